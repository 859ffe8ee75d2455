"""Read a DynamoDB table's stream after a sequence number, for the event source mapping runner.

moto gives a table's stream one shard, which keeps every record written to the table
since the stream was turned on (it empties it only when a mapped function it ran itself
answers, which the local cloud switches off, see `moto_patches`); record `i` has the
sequence number `first + i`. Two sources hold the same records:

- `BackendStreamReader` reads moto's in-process table: the next records are list lookups.
- `HttpStreamReader` uses DynamoDB Streams' `GetShardIterator` / `GetRecords` over
  HTTP, for an emulator (or a table) that is not in this process. moto keeps every shard
  iterator it hands out (each `GetRecords` answer makes one, records or not), so polling
  over HTTP grows that emulator's memory for as long as it polls (a kilobyte or so a
  poll); the local cloud's runner reads its own emulator's tables in process.

Where DynamoDB keeps a stream's records for 24 hours, moto keeps them for as long as the
table lives (and snapshots carry them): fine for the alert state's few writes, not for a
table written thousands of times a second.

Both read each record as `TableStreamRecord`: what the record says of the change (keys,
images, sequence number, size, view type) in DynamoDB JSON, binary values as base64 text
as Lambda's events carry them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from local_cloud import moto_internals
from local_cloud.shard_reader import ApiShardReader


@dataclass(frozen=True)
class TableStreamRecord:
    """One record of a table's stream as the event source mapping delivers it."""

    sequence_number: str
    event_id: str
    event_name: str  # INSERT, MODIFY or REMOVE
    #: The record's `dynamodb` object without its creation time: `Keys`, the images the
    #: view type holds (`NewImage`, `OldImage`), `SequenceNumber`, `SizeBytes`,
    #: `StreamViewType`. Shared by every delivery of the record: copy it to hand it out.
    change: dict[str, Any]
    arrival: float  # epoch seconds

    @property
    def size(self) -> int:
        """Payload bytes counted against the 6 MB batch limit."""
        return int(self.change.get("SizeBytes") or 0)


def split_stream_arn(arn: str) -> tuple[str, str, str]:
    """(region, account id, table name) of a DynamoDB stream ARN
    (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`)."""
    parts = arn.split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 else []
    if parts[2:3] != ["dynamodb"] or len(resource) != 4 or resource[::2] != ["table", "stream"]:
        raise ValueError(f"not a DynamoDB stream ARN: {arn!r}")
    return parts[3], parts[4], resource[1]


def is_stream_arn(arn: str) -> bool:
    """Whether `arn` is a DynamoDB stream's."""
    try:
        split_stream_arn(arn)
    except ValueError:
        return False
    return True


def moto_stream_shard(arn: str) -> Any | None:
    """moto's in-process shard of the stream `arn`, or None when its table lives elsewhere."""
    region, account, table = split_stream_arn(arn)
    return moto_internals.table_stream_shard(region, account, table)


def _json_value(value: Any) -> Any:
    """A copy of a DynamoDB JSON value with binary content as base64 text."""
    if isinstance(value, dict):
        return {key: _json_value(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_json_value(member) for member in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def _record(body: dict[str, Any], arrival: float) -> TableStreamRecord:
    change = {
        key: _json_value(value)
        for key, value in body["dynamodb"].items()
        if key != "ApproximateCreationDateTime"
    }
    return TableStreamRecord(
        sequence_number=str(change["SequenceNumber"]),
        event_id=body["eventID"],
        event_name=body["eventName"],
        change=change,
        arrival=arrival,
    )


class BackendStreamReader:
    """Reads a table's stream straight from moto's DynamoDB backend in this process."""

    def __init__(self, shard: Any) -> None:
        self._records = moto_internals.stream_shard_records(shard)
        self._first = moto_internals.stream_shard_first_sequence(shard)

    def read_after(self, sequence: int, limit: int) -> list[TableStreamRecord]:
        """Up to `limit` records after `sequence`, by index."""
        start = max(0, sequence + 1 - self._first)
        return [
            _record(
                moto_internals.stream_record_body(record),
                moto_internals.stream_record_arrival(record),
            )
            for record in self._records[start : start + limit]
        ]

    def latest_sequence(self) -> int:
        """Highest sequence number (0 when the stream is empty)."""
        count = len(self._records)
        return self._first + count - 1 if count else 0

    def sequence_at(self, timestamp: float) -> int:
        """Sequence number before the first record written at or after `timestamp`."""
        for index, record in enumerate(list(self._records)):
            if moto_internals.stream_record_arrival(record) >= timestamp:
                return self._first + index - 1
        return self.latest_sequence()


class HttpStreamReader(ApiShardReader[TableStreamRecord]):
    """Reads a table's stream through DynamoDB Streams (`GetShardIterator`, `GetRecords`).

    `first` is the shard's `StartingSequenceNumber` (`DescribeStream`): a position before
    it reads the shard from its start.
    """

    def __init__(self, client: Any, stream_arn: str, shard_id: str, first: int) -> None:
        super().__init__()
        self._client = client
        self._arn = stream_arn
        self._shard_id = shard_id
        self._first = first

    def _iterator_for(self, sequence: int) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self._arn, "ShardId": self._shard_id}
        if sequence < self._first:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=str(sequence))
        iterator: str = self._client.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _get_records(self, iterator: str) -> tuple[list[TableStreamRecord], str | None]:
        response = self._client.get_records(ShardIterator=iterator, Limit=1000)
        records = [
            _record(r, r["dynamodb"]["ApproximateCreationDateTime"].timestamp())
            for r in response["Records"]
        ]
        return records, response.get("NextShardIterator")

    def _follows(self, sequence: int, record: TableStreamRecord) -> bool:
        return int(record.sequence_number) == max(sequence + 1, self._first)
