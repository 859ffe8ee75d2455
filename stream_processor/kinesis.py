"""The Kinesis side of the event: records as Lambda's event source mapping sends them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record: its coordinates and its raw payload bytes."""

    sequence_number: str
    partition_key: str | None
    data: bytes
    approximate_arrival_timestamp: float | None
    event_source_arn: str | None
    shard_id: str
    #: False when `kinesis.data` was not base64; `data` then holds the text as it came.
    decoded: bool = True


def read_records(event: dict) -> list[StreamRecord]:
    """Unpack a Kinesis event. Records without a sequence number raise KeyError.

    Such an event cannot come from an event source mapping, and a record that
    cannot be named cannot be reported or retried, so failing the whole batch is
    the only safe answer.
    """
    records = []
    for raw in event.get("Records") or ():
        kinesis = raw["kinesis"]
        encoded = kinesis.get("data") or ""
        try:
            data, decoded = base64.b64decode(encoded, validate=True), True
        except (binascii.Error, ValueError, TypeError):
            data, decoded = str(encoded).encode("utf-8", "replace"), False
        event_id = raw.get("eventID") or ""
        records.append(
            StreamRecord(
                sequence_number=kinesis["sequenceNumber"],
                partition_key=kinesis.get("partitionKey"),
                data=data,
                approximate_arrival_timestamp=kinesis.get("approximateArrivalTimestamp"),
                event_source_arn=raw.get("eventSourceARN"),
                shard_id=event_id.rpartition(":")[0] or "shard-unknown",
                decoded=decoded,
            )
        )
    return records
