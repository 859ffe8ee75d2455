"""The project's seed test payloads, end to end against the AWS emulator and under moto's mock.

The same assertions hold in both: over HTTP against the local cloud's emulator,
and in process under `mock_aws` (no server, no endpoint variable, Lambda's
entry point), the way a Lambda team unit-tests a function.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import pytest

from stream_processor import contract
from tests.stream_processor.conftest import DeployedProcessor, raw_bytes
from tests.support.kinesis_events import (
    ARRIVAL,
    SHARD_ID,
    STREAM_ARN,
    kinesis_event,
    sequence_number,
)

TTL_SECONDS = 90 * 86400


def _strings(codes: list[str]) -> dict:
    return {"L": [{"S": code} for code in codes]}


def expected_item(
    device: str,
    timestamp: str,
    alerts: Sequence[str] = (),
    flags: Sequence[str] = (),
    alert_date: str | None = None,
    **numbers: str,
) -> dict:
    """The item the contract promises, without the ingestion-time attributes."""
    item = {
        "device_id": {"S": device},
        "timestamp": {"N": timestamp},
        **{name: {"N": value} for name, value in numbers.items()},
        "alerts": _strings(list(alerts)),
        "quality_flags": _strings(list(flags)),
        "sequence_number": {"S": sequence_number(0)},
    }
    if alert_date:
        item["alert_date"] = {"S": alert_date}
    return item


def without_ingestion_times(item: dict, before: float, after: float) -> dict:
    """Check ingested_at/expires_at (TTL from ingestion time) and drop them."""
    item = dict(item)
    ingested_at = float(item.pop(contract.INGESTED_AT)["N"])
    expires_at = item.pop(contract.EXPIRES_AT)["N"]
    assert before - 0.001 <= ingested_at <= after + 0.001
    assert expires_at == str(int(ingested_at) + TTL_SECONDS)
    return item


SEED_READINGS = [
    pytest.param(
        '{"device_id": "sensor-101", "timestamp": 1700100000, "temperature": 22, "humidity": 55}',
        expected_item("sensor-101", "1700100000", temperature="22", humidity="55"),
        id="normal",
    ),
    pytest.param(
        '{"device_id": "sensor-102", "timestamp": 1700100500, "temperature": 75, "humidity": 40}',
        expected_item(
            "sensor-102",
            "1700100500",
            alerts=["HIGH_TEMPERATURE"],
            alert_date="2023-11-16",
            temperature="75",
            humidity="40",
        ),
        id="high-temperature",
    ),
    pytest.param(
        '{"device_id": "sensor-103", "timestamp": 1700101000, "temperature": 21, "humidity": 10}',
        expected_item(
            "sensor-103",
            "1700101000",
            alerts=["LOW_HUMIDITY"],
            alert_date="2023-11-16",
            temperature="21",
            humidity="10",
        ),
        id="low-humidity",
    ),
    pytest.param(
        '{"device_id": "sensor-104", "timestamp": 1700101500, "temperature": 30}',
        expected_item("sensor-104", "1700101500", flags=["MISSING_HUMIDITY"], temperature="30"),
        id="missing-humidity",
    ),
    pytest.param(
        '{"device_id": "sensor-105", "timestamp": 1700103000, "temperature": 150, "humidity": 30}',
        expected_item(
            "sensor-105",
            "1700103000",
            flags=["TEMPERATURE_OUT_OF_RANGE"],
            temperature="150",
            humidity="30",
        ),
        id="extremely-high-temperature-flagged-not-alerted",
    ),
    pytest.param(
        '{"device_id": "sensor-106", "timestamp": 1700103500, "temperature": -10, "humidity": -5}',
        expected_item(
            "sensor-106",
            "1700103500",
            flags=["HUMIDITY_OUT_OF_RANGE"],
            temperature="-10",
            humidity="-5",
        ),
        id="negative-humidity-flagged-not-alerted",
    ),
    pytest.param(
        '{"device_id": "sensor-107", "timestamp": 1700104000, "temperature": 25, "humidity": 65,'
        ' "pressure": 1012}',
        expected_item("sensor-107", "1700104000", temperature="25", humidity="65", pressure="1012"),
        id="extra-pressure-field-kept-as-number",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), SEED_READINGS)
def test_seed_reading_is_stored_exactly(
    any_cloud: DeployedProcessor, payload: str, expected: dict
) -> None:
    """GIVEN a seed payload published by a device
    WHEN its Kinesis record is processed
    THEN exactly one item with the contract's attributes is stored and nothing is reported.
    """
    before = time.time()
    response = any_cloud.processor.process(kinesis_event([payload]))
    after = time.time()

    assert response == {"batchItemFailures": []}
    [item] = any_cloud.items()
    assert without_ingestion_times(item, before, after) == expected
    assert any_cloud.quarantine_objects() == {}


def test_alerting_readings_appear_in_the_sparse_alerts_index(any_cloud: DeployedProcessor) -> None:
    """GIVEN the three seed readings normal, high temperature and low humidity
    WHEN they are processed as one batch
    THEN only the two alerting readings are listed by the alerts-by-date index for their day.
    """
    any_cloud.processor.process(
        kinesis_event(
            [
                '{"device_id": "sensor-101", "timestamp": 1700100000, "temperature": 22,'
                ' "humidity": 55}',
                '{"device_id": "sensor-102", "timestamp": 1700100500, "temperature": 75,'
                ' "humidity": 40}',
                '{"device_id": "sensor-103", "timestamp": 1700101000, "temperature": 21,'
                ' "humidity": 10}',
            ]
        )
    )
    listed = any_cloud.dynamodb.query(
        TableName=any_cloud.config.table_name,
        IndexName=contract.ALERTS_INDEX,
        KeyConditionExpression="alert_date = :day",
        ExpressionAttributeValues={":day": {"S": "2023-11-16"}},
    )["Items"]
    assert sorted(i["device_id"]["S"] for i in listed) == ["sensor-102", "sensor-103"]


def test_invalid_json_seed_is_quarantined_with_its_raw_bytes(
    any_cloud: DeployedProcessor,
) -> None:
    """GIVEN the seed payload `Invalid JSON Data`
    WHEN it is processed
    THEN nothing is stored, the batch succeeds, and one quarantine line under the arrival date
    holds the reason, the Kinesis coordinates and the exact original bytes.
    """
    before = time.time()
    response = any_cloud.processor.process(kinesis_event(["Invalid JSON Data"]))
    after = time.time()

    assert response == {"batchItemFailures": []}
    assert any_cloud.items() == []
    [key] = any_cloud.quarantine_objects()
    assert key.startswith("quarantine/dt=2023-11-16/" + SHARD_ID)
    [line] = any_cloud.quarantine_lines()
    assert tuple(line) == contract.QUARANTINE_FIELDS
    assert raw_bytes(line) == b"Invalid JSON Data"
    assert line["reason"] == contract.INVALID_JSON
    assert line["detail"].startswith("payload is not JSON")
    assert line["device_id"] is None
    assert line["sequence_number"] == sequence_number(0)
    assert line["partition_key"] == "sensor"
    assert line["approximate_arrival_timestamp"] == ARRIVAL
    assert line["event_source_arn"] == STREAM_ARN
    quarantined_at = datetime.fromisoformat(line["quarantined_at"]).timestamp()
    assert before - 0.001 <= quarantined_at <= after + 0.001


def test_the_ttl_counts_from_the_stored_ingestion_time_on_a_second_boundary(
    any_cloud: DeployedProcessor,
) -> None:
    """GIVEN the clock 0.4 ms before a whole second (the stored ingestion time rounds up to it)
    WHEN a reading is processed THEN its expiry is the stored ingestion time's second plus the
    TTL, not the second before."""
    import time_machine

    with time_machine.travel(1796154277.9996, tick=False):
        any_cloud.processor.process(
            kinesis_event(
                ['{"device_id": "sensor-101", "timestamp": 1700100000, "temperature": 22}']
            )
        )
    [item] = any_cloud.items()
    assert item[contract.INGESTED_AT]["N"] == "1796154278"
    assert item[contract.EXPIRES_AT]["N"] == str(1796154278 + TTL_SECONDS)
