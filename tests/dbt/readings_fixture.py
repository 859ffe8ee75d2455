"""A small hand-made warehouse: four devices on 2024-03-01, every case the marts handle.

The rows are what the loader leaves in `raw.*`: one row per natural key, its latest
write (the lake keeps the newest version of a reading, the latest quarantine of a
record). Expected mart values in the tests are computed by hand from these rows;
the comments say which row drives which number.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream_processor import contract


def reading(
    device_id: str,
    at: str,
    temperature: float | None,
    humidity: float | None,
    *,
    sequence_number: str,
    alerts: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    ingested_at: str | None = None,
    pressure: float | None = None,
) -> dict[str, object]:
    """One `raw.sensor_readings` row as the loader writes it (ingested 5 s after by default,
    written to the table a second later)."""
    reading_at = datetime.fromisoformat(at).replace(tzinfo=UTC)
    ingested = (
        datetime.fromisoformat(ingested_at).replace(tzinfo=UTC)
        if ingested_at
        else reading_at + timedelta(seconds=5)
    )
    return {
        contract.DEVICE_ID: device_id,
        "reading_epoch": reading_at.timestamp(),
        "reading_at": reading_at.replace(tzinfo=None),
        contract.TEMPERATURE: temperature,
        contract.HUMIDITY: humidity,
        contract.ALERTS: ",".join(alerts),
        contract.QUALITY_FLAGS: ",".join(flags),
        contract.SEQUENCE_NUMBER: sequence_number,
        "ingested_at": ingested.replace(tzinfo=None),
        "written_at": (ingested + timedelta(seconds=1)).replace(tzinfo=None),
        "dt": reading_at.date(),
        "pressure": pressure,
    }


def quarantined(
    sequence_number: str,
    reason: str,
    *,
    device_id: str | None,
    partition_key: str,
    arrived_at: str,
    quarantined_at: str,
) -> dict[str, object]:
    """One `raw.quarantined_records` row."""
    arrived = datetime.fromisoformat(arrived_at)
    return {
        contract.SEQUENCE_NUMBER: sequence_number,
        "reason": reason,
        "detail": f"{reason.lower()} in test payload",
        contract.DEVICE_ID: device_id,
        "payload_base64": "bm90IGpzb24=",
        "partition_key": partition_key,
        "arrived_at": arrived,
        "quarantined_at": datetime.fromisoformat(quarantined_at),
        "event_source_arn": "arn:aws:kinesis:ap-southeast-2:000000000000:stream/test",
        "dt": arrived.date(),
    }


HIGH = contract.HIGH_TEMPERATURE
LOW = contract.LOW_HUMIDITY

READINGS = [
    # dev-a, 09:00 hour: three clean readings
    reading("dev-a", "2024-03-01 09:00:00", 20.0, 50.0, sequence_number="a1", pressure=1013.0),
    reading("dev-a", "2024-03-01 09:20:00", 21.0, 50.0, sequence_number="a2"),
    reading("dev-a", "2024-03-01 09:40:00", 22.0, 50.0, sequence_number="a3"),
    # dev-a, 10:00 hour
    reading("dev-a", "2024-03-01 10:00:00", 20.0, 50.0, sequence_number="a4"),
    # written twice: the lake kept the later write (22.0 / 40.0)
    reading(
        "dev-a",
        "2024-03-01 10:15:00",
        22.0,
        40.0,
        sequence_number="a6",
        ingested_at="2024-03-01 11:00:00",
    ),
    # an alert re-delivered unchanged: one row, so one alert
    reading(
        "dev-a",
        "2024-03-01 10:30:00",
        36.0,
        25.0,
        sequence_number="a7",
        alerts=(HIGH,),
        ingested_at="2024-03-01 10:31:00",
    ),
    reading(
        "dev-a",
        "2024-03-01 10:45:00",
        None,
        30.0,
        sequence_number="a8",
        flags=(contract.MISSING_TEMPERATURE,),
    ),
    # dev-a, 11:00 hour
    reading(
        "dev-a",
        "2024-03-01 11:00:00",
        150.0,
        40.0,
        sequence_number="a9",
        flags=(contract.TEMPERATURE_OUT_OF_RANGE,),
    ),
    reading("dev-a", "2024-03-01 11:30:00", 24.0, 10.0, sequence_number="a10", alerts=(LOW,)),
    # coerced from a numeric string: still valid
    reading(
        "dev-a",
        "2024-03-01 11:45:00",
        40.0,
        15.0,
        sequence_number="a11",
        alerts=(HIGH, LOW),
        flags=(contract.COERCED_TEMPERATURE,),
    ),
    # dev-b: silent since 03:10, 8 h 35 before the latest reading (11:45): stale
    reading("dev-b", "2024-03-01 03:00:00", 18.0, 60.0, sequence_number="b1"),
    reading(
        "dev-b",
        "2024-03-01 03:10:00",
        19.0,
        150.0,
        sequence_number="b2",
        flags=(contract.HUMIDITY_OUT_OF_RANGE,),
    ),
    # dev-c: one of two recent readings invalid (0.5 > 0.2): faulty
    reading(
        "dev-c",
        "2024-03-01 11:00:00",
        None,
        None,
        sequence_number="c1",
        flags=(contract.MISSING_TEMPERATURE, contract.MISSING_HUMIDITY),
    ),
    reading("dev-c", "2024-03-01 11:20:00", 21.0, 55.0, sequence_number="c2"),
]

QUARANTINED = [
    quarantined(
        "q1",
        contract.INVALID_TEMPERATURE,
        device_id="dev-c",
        partition_key="dev-c",
        arrived_at="2024-03-01 11:05:00",
        quarantined_at="2024-03-01 11:05:01",
    ),
    # unreadable payload: attributed to its partition key; quarantined twice by a retry, the
    # lake kept the latest quarantine
    quarantined(
        "q2",
        contract.INVALID_JSON,
        device_id=None,
        partition_key="dev-c",
        arrived_at="2024-03-01 11:06:00",
        quarantined_at="2024-03-01 11:07:30",
    ),
    # a device that never got a reading through
    quarantined(
        "q3",
        contract.NOT_AN_OBJECT,
        device_id=None,
        partition_key="dev-d",
        arrived_at="2024-03-01 08:00:00",
        quarantined_at="2024-03-01 08:00:01",
    ),
]

RULE_ERRORS = [
    {
        "error_id": "errors/1709283600000-e1.json",
        "reason": contract.TOPIC_RULE_ERROR,
        "rule_name": "rule_sensors",
        "topic": "iot/sensors",
        "client_id": "n/a",
        "payload_base64": "SW52YWxpZCBKU09OIERhdGE=",
        "failed_action": "KinesisAction",
        "failed_resource": "kinesis-stream",
        "error_message": "Failed to put record in Kinesis stream.",
        "errored_at": datetime(2024, 3, 1, 9, 0, 0),
        "dt": datetime(2024, 3, 1).date(),
    }
]

LATE_READINGS = [
    # arrives a day late for dev-a's 10:00 hour
    reading(
        "dev-a",
        "2024-03-01 10:50:00",
        30.0,
        35.0,
        sequence_number="a12",
        ingested_at="2024-03-02 08:00:00",
    ),
    # written again, unchanged but for its times (a redelivery): must not count twice
    reading(
        "dev-a",
        "2024-03-01 10:00:00",
        20.0,
        50.0,
        sequence_number="a4",
        ingested_at="2024-03-02 08:00:00",
    ),
    # a late alert for dev-b's 03:00 hour
    reading(
        "dev-b",
        "2024-03-01 03:30:00",
        38.0,
        55.0,
        sequence_number="b3",
        alerts=(HIGH,),
        ingested_at="2024-03-02 08:00:00",
    ),
]
