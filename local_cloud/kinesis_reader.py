"""Read a Kinesis shard's records after a sequence number, for the event source mapping runner.

Two sources hold the same records:

- `BackendShardReader` reads moto's in-process Kinesis objects. moto numbers a
  shard's records 1, 2, 3... and keeps them in a dict, so the next records are
  direct lookups; its `GetRecords` instead scans the shard from the start on
  every call, which gets slower as the shard fills (see `benchmarks/bench_esm_runner.py`).
- `HttpShardReader` uses `GetShardIterator` / `GetRecords` over HTTP, for an
  emulator (or a stream) that is not in this process.

Both are `shard_reader.ShardReader`s; a table's stream has readers of its own
(`dynamodb_stream_reader`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from local_cloud import moto_internals
from local_cloud.shard_reader import ApiShardReader


@dataclass(frozen=True)
class KinesisRecord:
    """One Kinesis record as the event source mapping delivers it."""

    sequence_number: str
    partition_key: str
    data_b64: str
    arrival: float  # epoch seconds

    @property
    def size(self) -> int:
        """Payload bytes counted against the 6 MB batch limit."""
        return len(self.data_b64) * 3 // 4 + len(self.partition_key)


def split_stream_arn(arn: str) -> tuple[str, str, str]:
    """(region, account id, stream name) of a Kinesis stream ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "kinesis" or not parts[5].startswith("stream/"):
        raise ValueError(f"not a Kinesis stream ARN: {arn!r}")
    return parts[3], parts[4], parts[5].removeprefix("stream/")


def moto_stream(arn: str) -> Any | None:
    """moto's in-process stream object for `arn`, or None when it lives elsewhere."""
    region, account, name = split_stream_arn(arn)
    return moto_internals.kinesis_stream(region, account, name)


class BackendShardReader:
    """Reads a shard straight from moto's Kinesis backend in this process."""

    def __init__(self, shard: Any) -> None:
        self._records = moto_internals.shard_records(shard)

    def read_after(self, sequence: int, limit: int) -> list[KinesisRecord]:
        """Up to `limit` records after `sequence`, by direct lookup (no scan)."""
        out: list[KinesisRecord] = []
        records = self._records
        nxt = sequence + 1
        while len(out) < limit:
            record = records.get(nxt)
            if record is None:
                break
            out.append(
                KinesisRecord(
                    sequence_number=str(nxt),
                    partition_key=moto_internals.record_partition_key(record),
                    data_b64=base64.b64encode(moto_internals.record_data(record)).decode("ascii"),
                    arrival=moto_internals.record_arrival(record),
                )
            )
            nxt += 1
        return out

    def latest_sequence(self) -> int:
        """Highest sequence number; `reversed` on the dict is O(1)."""
        while True:
            try:
                return next(reversed(self._records), 0)
            except RuntimeError:  # the dict grew while we looked; look again
                continue

    def sequence_at(self, timestamp: float) -> int:
        """Sequence number before the first record arriving at or after `timestamp`."""
        for seq, record in list(self._records.items()):
            if moto_internals.record_arrival(record) >= timestamp:
                return seq - 1
        return self.latest_sequence()


class HttpShardReader(ApiShardReader[KinesisRecord]):
    """Reads a shard through the Kinesis API (`GetShardIterator`, `GetRecords`)."""

    def __init__(self, client: Any, stream_arn: str, shard_id: str) -> None:
        super().__init__()
        self._client = client
        self._arn = stream_arn
        self._shard_id = shard_id

    def _iterator_for(self, sequence: int) -> str:
        # By name: moto's iterators made from a StreamARN do not carry the stream.
        name = split_stream_arn(self._arn)[2]
        kwargs: dict[str, Any] = {"StreamName": name, "ShardId": self._shard_id}
        if sequence <= 0:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=str(sequence)
            )
        iterator: str = self._client.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _get_records(self, iterator: str) -> tuple[list[KinesisRecord], str | None]:
        response = self._client.get_records(ShardIterator=iterator, Limit=10000)
        records = [
            KinesisRecord(
                sequence_number=r["SequenceNumber"],
                partition_key=r["PartitionKey"],
                data_b64=base64.b64encode(r["Data"]).decode("ascii"),
                arrival=r["ApproximateArrivalTimestamp"].timestamp(),
            )
            for r in response["Records"]
        ]
        return records, response.get("NextShardIterator")
