"""Awkward payloads: each is stored normalised or quarantined with the right reason, never lost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stream_processor import contract
from tests.stream_processor.conftest import DeployedProcessor, raw_bytes
from tests.support.kinesis_events import kinesis_event, sequence_number


def _reading(**fields: object) -> dict:
    return {"device_id": "sensor-1", "timestamp": 1700100000, **fields}


def _nested(depth: int) -> dict:
    value: Any = 1
    for _ in range(depth):
        value = {"level": value}
    return value


QUARANTINED = [
    pytest.param(b"", contract.EMPTY_PAYLOAD, None, id="empty-payload"),
    pytest.param(b"\xff\xfe\x00\x9c garbage \x00", contract.INVALID_JSON, None, id="binary"),
    pytest.param(b'{"device_id": "s\xff"}', contract.INVALID_JSON, None, id="invalid-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, contract.INVALID_JSON, None, id="deep-json"),
    pytest.param(b"[1, 2]", contract.NOT_AN_OBJECT, None, id="array"),
    pytest.param(b'"text"', contract.NOT_AN_OBJECT, None, id="string"),
    pytest.param({"timestamp": 1700100000}, contract.MISSING_DEVICE_ID, None, id="no-device"),
    pytest.param(_reading(device_id=""), contract.INVALID_DEVICE_ID, "", id="empty-device"),
    pytest.param(_reading(device_id=42), contract.INVALID_DEVICE_ID, None, id="numeric-device"),
    pytest.param(
        _reading(device_id="a b"), contract.INVALID_DEVICE_ID, "a b", id="device-with-space"
    ),
    pytest.param(
        _reading(device_id="d" * 129), contract.INVALID_DEVICE_ID, "d" * 129, id="long-device"
    ),
    pytest.param({"device_id": "s"}, contract.MISSING_TIMESTAMP, "s", id="no-timestamp"),
    pytest.param(_reading(timestamp="yesterday"), contract.INVALID_TIMESTAMP, "sensor-1", id="ts"),
    pytest.param(_reading(timestamp=True), contract.INVALID_TIMESTAMP, "sensor-1", id="ts-bool"),
    pytest.param(_reading(timestamp=-5), contract.INVALID_TIMESTAMP, "sensor-1", id="ts-negative"),
    pytest.param(_reading(timestamp=1e20), contract.INVALID_TIMESTAMP, "sensor-1", id="ts-huge"),
    pytest.param(
        b'{"device_id": "sensor-1", "timestamp": 1700100000, "temperature": NaN}',
        contract.INVALID_TEMPERATURE,
        "sensor-1",
        id="temperature-nan",
    ),
    pytest.param(
        b'{"device_id": "sensor-1", "timestamp": 1700100000, "humidity": -Infinity}',
        contract.INVALID_HUMIDITY,
        "sensor-1",
        id="humidity-infinity",
    ),
    pytest.param(
        b'{"device_id": "sensor-1", "timestamp": 1700100000, "temperature": 1e999}',
        contract.INVALID_TEMPERATURE,
        "sensor-1",
        id="temperature-overflow",
    ),
    pytest.param(
        _reading(temperature=True), contract.INVALID_TEMPERATURE, "sensor-1", id="temp-bool"
    ),
    pytest.param(
        _reading(humidity="wet"), contract.INVALID_HUMIDITY, "sensor-1", id="humidity-text"
    ),
    pytest.param(
        _reading(humidity="NaN"), contract.INVALID_HUMIDITY, "sensor-1", id="humidity-nan-text"
    ),
    pytest.param(
        _reading(temperature={"c": 1}), contract.INVALID_TEMPERATURE, "sensor-1", id="temp-obj"
    ),
    pytest.param(
        b'{"device_id": "sensor-1", "timestamp": 1700100000, "pressure": NaN}',
        contract.INVALID_FIELD,
        "sensor-1",
        id="extra-nan",
    ),
    pytest.param(_reading(pressure=1e200), contract.INVALID_FIELD, "sensor-1", id="number-range"),
    pytest.param(_reading(pressure=10**40 + 1), contract.INVALID_FIELD, "sensor-1", id="digits"),
    pytest.param(_reading(meta=_nested(40)), contract.INVALID_FIELD, "sensor-1", id="nesting-40"),
    pytest.param(_reading(**{"": 1}), contract.INVALID_FIELD, "sensor-1", id="empty-name"),
    pytest.param(_reading(meta={"": 1}), contract.INVALID_FIELD, "sensor-1", id="empty-map-key"),
    pytest.param(
        b'{"device_id": "sensor-1", "timestamp": 1700100000, "note": "\\ud800"}',
        contract.INVALID_FIELD,
        "sensor-1",
        id="lone-surrogate",
    ),
    pytest.param(_reading(alerts=[]), contract.RESERVED_FIELD, "sensor-1", id="reserved-alerts"),
    pytest.param(
        _reading(expires_at=1), contract.RESERVED_FIELD, "sensor-1", id="reserved-expires"
    ),
    pytest.param(
        _reading(blob="x" * 420_000), contract.ITEM_TOO_LARGE, "sensor-1", id="item-too-large"
    ),
]


@pytest.mark.parametrize(("payload", "reason", "device_id"), QUARANTINED)
def test_unstorable_payload_is_quarantined_with_its_reason(
    cloud: DeployedProcessor, payload: bytes | dict, reason: str, device_id: str | None
) -> None:
    """GIVEN a payload that breaks the reading contract, next to a valid reading
    WHEN the batch is processed
    THEN the bad record is quarantined with the expected reason, its device id when readable
    and its exact bytes, the valid reading is stored, and the batch reports no failure.
    """
    original = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    valid = _reading(device_id="sensor-ok", temperature=20, humidity=50)

    response = cloud.processor.process(kinesis_event([original, valid]))

    assert response == {"batchItemFailures": []}
    [line] = cloud.quarantine_lines()
    assert (line["reason"], line["device_id"]) == (reason, device_id)
    assert line["detail"]
    assert raw_bytes(line) == original
    assert line["sequence_number"] == sequence_number(0)
    assert [item["device_id"]["S"] for item in cloud.items()] == ["sensor-ok"]


STORED = [
    pytest.param(
        _reading(timestamp=1700100000123),
        {"timestamp": {"N": "1700100000.123"}},
        id="epoch-milliseconds",
    ),
    pytest.param(
        _reading(timestamp=1700100000.5), {"timestamp": {"N": "1700100000.5"}}, id="fraction"
    ),
    pytest.param(
        _reading(timestamp="2023-11-16T02:00:00Z"),
        {"timestamp": {"N": "1700100000"}},
        id="iso-utc",
    ),
    pytest.param(
        _reading(timestamp="2023-11-16T02:00:00.250"),
        {"timestamp": {"N": "1700100000.25"}},
        id="iso-naive-is-utc",
    ),
    pytest.param(
        _reading(timestamp="2023-11-16T12:00:00+10:00"),
        {"timestamp": {"N": "1700100000"}},
        id="iso-offset",
    ),
    pytest.param(
        _reading(temperature="22.5", humidity=" 40 "),
        {
            "temperature": {"N": "22.5"},
            "humidity": {"N": "40"},
            "quality_flags": {"L": [{"S": "COERCED_TEMPERATURE"}, {"S": "COERCED_HUMIDITY"}]},
        },
        id="numeric-strings-coerced",
    ),
    pytest.param(
        _reading(temperature="75"),
        {
            "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}]},
            "alert_date": {"S": "2023-11-16"},
        },
        id="coerced-value-still-alerts",
    ),
    pytest.param(
        _reading(temperature=None, humidity=None),
        {"quality_flags": {"L": [{"S": "MISSING_TEMPERATURE"}, {"S": "MISSING_HUMIDITY"}]}},
        id="null-measurements-are-missing",
    ),
    pytest.param(
        _reading(temperature=20, humidity=50, online=True, firmware="1.2", battery=None),
        {"online": {"BOOL": True}, "firmware": {"S": "1.2"}, "battery": {"NULL": True}},
        id="extra-fields-keep-their-types",
    ),
    pytest.param(
        _reading(location={"lat": -33.86, "tags": ["roof", 3]}),
        {"location": {"M": {"lat": {"N": "-33.86"}, "tags": {"L": [{"S": "roof"}, {"N": "3"}]}}}},
        id="nested-objects-and-lists",
    ),
    pytest.param(
        _reading(meta=_nested(31)),
        {},
        id="nesting-within-dynamodb-limit",
    ),
    pytest.param(
        _reading(temperature=-41, humidity=101),
        {
            "quality_flags": {
                "L": [{"S": "TEMPERATURE_OUT_OF_RANGE"}, {"S": "HUMIDITY_OUT_OF_RANGE"}]
            }
        },
        id="both-out-of-range-no-alerts",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), STORED)
def test_awkward_but_valid_reading_is_stored_normalised(
    cloud: DeployedProcessor, payload: dict, expected: dict
) -> None:
    """GIVEN a reading in an unusual but acceptable shape
    WHEN it is processed
    THEN one item is stored carrying the normalised attributes and nothing is quarantined.
    """
    response = cloud.processor.process(kinesis_event([payload]))

    assert response == {"batchItemFailures": []}
    [item] = cloud.items()
    assert {name: item.get(name) for name in expected} == expected
    assert cloud.quarantine_objects() == {}


def test_duplicates_in_a_batch_collapse_to_the_latest_record(cloud: DeployedProcessor) -> None:
    """GIVEN three records for the same device and time (seconds, milliseconds, ISO), then another
    WHEN the batch is processed
    THEN one item holds the values of the record with the highest sequence number.
    """
    event = kinesis_event(
        [
            _reading(temperature=20),
            _reading(timestamp=1700100000000, temperature=21),
            _reading(timestamp="2023-11-16T02:00:00Z", temperature=22),
            _reading(device_id="sensor-2", temperature=23),
        ]
    )

    response = cloud.processor.process(event)

    assert response == {"batchItemFailures": []}
    items = cloud.items()
    assert [(i["device_id"]["S"], i["temperature"]["N"]) for i in items] == [
        ("sensor-1", "22"),
        ("sensor-2", "23"),
    ]
    assert items[0]["sequence_number"] == {"S": sequence_number(2)}


def test_redelivered_batch_leaves_one_item_and_one_quarantine_object(
    cloud: DeployedProcessor,
) -> None:
    """GIVEN a batch with a valid reading and a malformed record, already processed once
    WHEN Lambda delivers the same batch again
    THEN there is still one item with the same reading and one quarantine object with one line.
    """
    event = kinesis_event([_reading(temperature=30, humidity=45), b"not json"])
    cloud.processor.process(event)
    [first] = cloud.items()
    first_objects = cloud.quarantine_objects()

    response = cloud.processor.process(event)

    assert response == {"batchItemFailures": []}
    [again] = cloud.items()
    ingestion = {contract.INGESTED_AT, contract.EXPIRES_AT}
    assert {k: v for k, v in again.items() if k not in ingestion} == {
        k: v for k, v in first.items() if k not in ingestion
    }
    assert list(cloud.quarantine_objects()) == list(first_objects)
    assert len(cloud.quarantine_lines()) == 1


def test_quarantine_objects_are_split_by_arrival_date(cloud: DeployedProcessor) -> None:
    """GIVEN malformed records that arrived on two different UTC days
    WHEN they are processed in one batch
    THEN each day's records land in one object under that day's dt= folder.
    """
    event = kinesis_event([b"bad-1", b"bad-2", b"bad-3"])
    event["Records"][2]["kinesis"]["approximateArrivalTimestamp"] = 1700179200.0  # next day

    cloud.processor.process(event)

    objects = cloud.quarantine_objects()
    folders = sorted(key.split("/")[1] for key in objects)
    assert folders == ["dt=2023-11-16", "dt=2023-11-17"]
    assert sorted(len(body.splitlines()) for body in objects.values()) == [1, 2]
