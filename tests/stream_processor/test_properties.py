"""Property: whatever arrives, every record is stored, quarantined or reported, exactly once."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.stream_processor.conftest import REGION, DeployedProcessor, create_table, raw_bytes
from tests.support.kinesis_events import as_bytes, kinesis_event, sequence_number

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
measurements = st.one_of(
    st.floats(),
    st.integers(-100, 200),
    st.sampled_from(["22.5", "abc", "", " 7 ", True, None, "1e999"]),
    json_values,
)
near_valid_readings = st.fixed_dictionaries(
    {
        "device_id": st.sampled_from(["sensor-1", "sensor-2", "bad id", "", 7])
        | st.text(max_size=6),
        "timestamp": st.one_of(
            st.sampled_from([1700100000, 1700100000000, "2023-11-16T02:00:00Z", "soon", -1]),
            st.integers(0, 2 * 10**14),
            st.floats(),
        ),
    },
    optional={
        "temperature": measurements,
        "humidity": measurements,
        "pressure": json_values,
        "alerts": json_values,
        "": json_values,
    },
)
payloads = st.one_of(
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid_readings.map(lambda v: json.dumps(v).encode()),
    near_valid_readings.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(payloads, min_size=1, max_size=8))
def test_every_record_has_exactly_one_outcome(
    emulator_clients: tuple[Any, Any], batch: list[bytes]
) -> None:
    """GIVEN a batch of arbitrary payloads (bytes, JSON values, near-valid readings)
    WHEN the processor handles it against the AWS emulator
    THEN it does not raise, and each record is exactly one of: reported for retry, quarantined
    with its exact bytes, or stored (possibly superseded by a later record with its key).
    """
    dynamodb, s3 = emulator_clients
    suffix = uuid.uuid4().hex[:12]
    config = Config(table_name=f"prop-{suffix}", quarantine_bucket=f"prop-{suffix}")
    create_table(dynamodb, config.table_name)
    s3.create_bucket(
        Bucket=config.quarantine_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    processor = StreamProcessor(
        config,
        dynamodb=dynamodb,
        s3=s3,
    )
    cloud = DeployedProcessor(config, dynamodb, s3, processor)
    try:
        response = processor.process(kinesis_event(batch))
    finally:
        processor.close()

    reported = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    lines = cloud.quarantine_lines()
    quarantined = {line["sequence_number"] for line in lines}
    items = cloud.items()
    latest_by_device: dict[str, int] = {}
    for item in items:
        sequence = int(item["sequence_number"]["S"])
        device = item["device_id"]["S"]
        latest_by_device[device] = max(sequence, latest_by_device.get(device, 0))

    everything = {sequence_number(i) for i in range(len(batch))}
    # A record neither reported nor quarantined must be in the table: as the item of its key,
    # or superseded by a later record of the same device.
    stored = set()
    for index, payload in enumerate(batch):
        number = sequence_number(index)
        if number in reported or number in quarantined:
            continue
        try:
            device = json.loads(payload).get("device_id")
        except (ValueError, AttributeError, RecursionError):
            continue
        if latest_by_device.get(device, -1) >= int(number):
            stored.add(number)

    item_sequences = {item["sequence_number"]["S"] for item in items}
    assert reported.isdisjoint(quarantined)
    assert item_sequences <= everything - reported - quarantined
    assert reported | quarantined | stored == everything
    for line in lines:
        index = int(line["sequence_number"]) - int(sequence_number(0))
        assert raw_bytes(line) == as_bytes(batch[index])
