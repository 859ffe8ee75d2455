"""Reading times no working clock gives are quarantined; late readings are stored as ever."""

from __future__ import annotations

import json
import time

import pytest

from stream_processor import contract
from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.stream_processor.conftest import DeployedProcessor, raw_bytes
from tests.support.kinesis_events import ARRIVAL, kinesis_event, sequence_number

#: 2000-01-01T00:00:00Z, the default earliest plausible reading time.
Y2K = 946684800
SKEW = 900


def _reading(timestamp: object, device: str = "sensor-1") -> dict:
    return {"device_id": device, "timestamp": timestamp, "temperature": 20, "humidity": 50}


IMPLAUSIBLE = [
    pytest.param(86400, contract.TIMESTAMP_TOO_EARLY, id="a-day-after-the-epoch"),
    pytest.param(Y2K - 1, contract.TIMESTAMP_TOO_EARLY, id="last-second-of-1999"),
    pytest.param((Y2K - 1) * 1000, contract.TIMESTAMP_TOO_EARLY, id="1999-in-milliseconds"),
    pytest.param("1999-12-31T23:59:59Z", contract.TIMESTAMP_TOO_EARLY, id="1999-iso"),
    pytest.param(0, contract.TIMESTAMP_TOO_EARLY, id="the-epoch"),
    pytest.param(int(ARRIVAL) + SKEW + 1, contract.TIMESTAMP_IN_FUTURE, id="skew-plus-a-second"),
    pytest.param(ARRIVAL + SKEW + 0.001, contract.TIMESTAMP_IN_FUTURE, id="skew-plus-a-ms"),
    pytest.param(
        int((ARRIVAL + 86400) * 1000), contract.TIMESTAMP_IN_FUTURE, id="a-day-ahead-in-ms"
    ),
    pytest.param("2023-11-17T04:46:40Z", contract.TIMESTAMP_IN_FUTURE, id="a-day-ahead-iso"),
    pytest.param(4102444800, contract.TIMESTAMP_IN_FUTURE, id="year-2100"),
]


@pytest.mark.parametrize(("timestamp", "reason"), IMPLAUSIBLE)
def test_implausible_reading_time_is_quarantined_with_its_own_reason(
    cloud: DeployedProcessor, timestamp: object, reason: str
) -> None:
    """GIVEN a reading dated before 2000 (a clock never set) or more than 15 minutes after its
    record reached Kinesis (a clock running fast), next to a valid reading
    WHEN the batch is processed
    THEN the implausible reading is quarantined with its reason, its device id and its exact
    bytes; the valid reading is stored; nothing is reported for retry.
    """
    payload = json.dumps(_reading(timestamp)).encode()

    response = cloud.processor.process(
        kinesis_event([payload, _reading(1700100000, device="sensor-ok")])
    )

    assert response == {"batchItemFailures": []}
    [line] = cloud.quarantine_lines()
    assert (line["reason"], line["device_id"]) == (reason, "sensor-1")
    assert raw_bytes(line) == payload
    assert line["sequence_number"] == sequence_number(0)
    assert [item["device_id"]["S"] for item in cloud.items()] == ["sensor-ok"]


PLAUSIBLE = [
    pytest.param(Y2K, str(Y2K), id="first-second-of-2000"),
    pytest.param(int(ARRIVAL) - 90 * 86400, str(int(ARRIVAL) - 90 * 86400), id="90-days-late"),
    pytest.param(1700000000, "1700000000", id="a-day-late"),
    pytest.param(ARRIVAL + SKEW, str(ARRIVAL + SKEW), id="exactly-the-allowed-skew-ahead"),
    pytest.param(int(ARRIVAL * 1000) + 60_000, str(int(ARRIVAL) + 60) + ".25", id="ms-ahead"),
    pytest.param("2000-01-01T00:00:00Z", str(Y2K), id="2000-iso"),
]


@pytest.mark.parametrize(("timestamp", "stored_as"), PLAUSIBLE)
def test_late_and_slightly_early_readings_are_stored(
    cloud: DeployedProcessor, timestamp: object, stored_as: str
) -> None:
    """GIVEN a reading dated in the past (from 2000 on) or at most 15 minutes after its arrival
    WHEN it is processed
    THEN it is stored under its own time and nothing is quarantined.
    """
    response = cloud.processor.process(kinesis_event([_reading(timestamp)]))

    assert response == {"batchItemFailures": []}
    [item] = cloud.items()
    assert item["timestamp"] == {"N": stored_as}
    assert cloud.quarantine_objects() == {}


def test_readings_of_a_clock_never_set_neither_overwrite_each_other_nor_vanish(
    cloud: DeployedProcessor,
) -> None:
    """GIVEN three readings of one device whose clock was never set: all dated 1970-01-01T00:00:05
    WHEN they are processed in one batch
    THEN all three are quarantined, each with its own values, and none is stored under that time.
    """
    payloads = [
        json.dumps({"device_id": "sensor-1", "timestamp": 5, "temperature": t}).encode()
        for t in (20, 21, 22)
    ]

    response = cloud.processor.process(kinesis_event(payloads))

    assert response == {"batchItemFailures": []}
    lines = cloud.quarantine_lines()
    assert [raw_bytes(line) for line in lines] == payloads
    assert {line["reason"] for line in lines} == {contract.TIMESTAMP_TOO_EARLY}
    assert cloud.items() == []


def test_both_limits_follow_the_functions_settings(cloud: DeployedProcessor) -> None:
    """GIVEN a function configured with EARLIEST_TIMESTAMP 2020-01-01 and a 60 s clock skew
    WHEN readings from 2019, from 2021, 59 s and 61 s after their arrival are processed
    THEN the 2019 reading and the one 61 s ahead are quarantined; the other two are stored.
    """
    config = Config(
        table_name=cloud.config.table_name,
        quarantine_bucket=cloud.config.quarantine_bucket,
        earliest_timestamp=1577836800,
        max_clock_skew_s=60,
    )
    processor = StreamProcessor(config, dynamodb=cloud.dynamodb, s3=cloud.s3)
    readings = [
        _reading(1546300800, "from-2019"),
        _reading(1609459200, "from-2021"),
        _reading(int(ARRIVAL) + 59, "59s-ahead"),
        _reading(int(ARRIVAL) + 61, "61s-ahead"),
    ]
    try:
        response = processor.process(kinesis_event(readings))
    finally:
        processor.close()

    assert response == {"batchItemFailures": []}
    assert [(line["device_id"], line["reason"]) for line in cloud.quarantine_lines()] == [
        ("from-2019", contract.TIMESTAMP_TOO_EARLY),
        ("61s-ahead", contract.TIMESTAMP_IN_FUTURE),
    ]
    assert sorted(item["device_id"]["S"] for item in cloud.items()) == ["59s-ahead", "from-2021"]


def test_a_record_without_an_arrival_time_is_judged_against_the_time_it_is_processed(
    cloud: DeployedProcessor,
) -> None:
    """GIVEN records without approximateArrivalTimestamp (not from an event source mapping)
    WHEN a reading dated now and one dated an hour from now are processed
    THEN the first is stored and the second quarantined as in the future.
    """
    now = int(time.time())
    event = kinesis_event([_reading(now, "now"), _reading(now + 3600, "in-an-hour")])
    for record in event["Records"]:
        del record["kinesis"]["approximateArrivalTimestamp"]

    cloud.processor.process(event)

    assert [item["device_id"]["S"] for item in cloud.items()] == ["now"]
    [line] = cloud.quarantine_lines()
    assert (line["device_id"], line["reason"]) == ("in-an-hour", contract.TIMESTAMP_IN_FUTURE)
