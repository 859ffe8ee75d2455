"""The Kinesis side of the event: records as Lambda's event source mapping sends them."""

from __future__ import annotations

import binascii
from typing import Any, NamedTuple


class StreamRecord(NamedTuple):
    """One Kinesis record: its coordinates and its raw payload bytes.

    A named tuple (immutable, and several times cheaper to build than a frozen
    dataclass): the handler makes one per record.
    """

    sequence_number: str
    partition_key: str | None
    data: bytes
    approximate_arrival_timestamp: float | None
    event_source_arn: str | None
    shard_id: str
    #: False when `kinesis.data` was not base64; `data` then holds the text as it came.
    decoded: bool = True


def read_records(event: dict[str, Any]) -> list[StreamRecord]:
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
            # Strict mode refuses anything but the base64 alphabet and padding at the end,
            # as base64.b64decode(validate=True) does, at half the cost.
            data, decoded = binascii.a2b_base64(encoded, strict_mode=True), True
        except (binascii.Error, ValueError, TypeError):
            data, decoded = str(encoded).encode("utf-8", "replace"), False
        event_id = raw.get("eventID") or ""
        arrival = kinesis.get("approximateArrivalTimestamp")
        records.append(
            StreamRecord(
                kinesis["sequenceNumber"],
                kinesis.get("partitionKey"),
                data,
                arrival if type(arrival) is float or type(arrival) is int else None,
                raw.get("eventSourceARN"),
                event_id.rpartition(":")[0] or "shard-unknown",
                decoded,
            )
        )
    return records
