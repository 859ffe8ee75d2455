"""Kinesis events shaped like the ones Lambda's event source mapping delivers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence

SHARD_ID = "shardId-000000000000"
STREAM_ARN = "arn:aws:kinesis:ap-southeast-2:123456789012:stream/kinesis-dev-apse2-iotdata-01"
#: A realistic Kinesis sequence number; records count up from it.
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898
#: When the factory's records reached Kinesis: after the seed readings (2023-11-16 02:13:20 to
#: 03:20 UTC), as a device's message arrives after it was read, on the same UTC day.
ARRIVAL = 1700110000.25


def sequence_number(index: int) -> str:
    """The sequence number of the record at `index` in a factory-built event."""
    return str(FIRST_SEQUENCE + index)


def as_bytes(payload: bytes | str | dict) -> bytes:
    """Payload bytes: dicts as JSON, text as UTF-8, bytes unchanged."""
    if isinstance(payload, dict):
        return json.dumps(payload).encode()
    if isinstance(payload, str):
        return payload.encode()
    return payload


def kinesis_record(
    payload: bytes | str | dict,
    index: int = 0,
    partition_key: str = "sensor",
    arrival: float = ARRIVAL,
) -> dict:
    """One event record; `data` is the base64 of the payload bytes."""
    sequence = sequence_number(index)
    return {
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD_ID}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-dev-apse2-iotdata-01",
        "awsRegion": "ap-southeast-2",
        "eventSourceARN": STREAM_ARN,
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(as_bytes(payload)).decode("ascii"),
            "approximateArrivalTimestamp": arrival,
        },
    }


def kinesis_event(payloads: Sequence[bytes | str | dict], arrival: float = ARRIVAL) -> dict:
    """An event with one record per payload, sequence numbers counting up."""
    return {"Records": [kinesis_record(p, i, arrival=arrival) for i, p in enumerate(payloads)]}


class FakeContext:
    """The part of the Lambda context the handler reads: a fixed time budget."""

    function_name = "lambda-dev-apse2-iotdata-01"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self._remaining_ms = remaining_ms
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left, counting down from construction like Lambda's."""
        return int(self._remaining_ms - (time.monotonic() - self._started) * 1000)
