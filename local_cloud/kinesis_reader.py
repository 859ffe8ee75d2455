"""Read a Kinesis shard's records after a sequence number, for the event source mapping runner.

Two sources hold the same records:

- `BackendShardReader` reads moto's in-process Kinesis objects. moto numbers a
  shard's records 1, 2, 3... and keeps them in a dict, so the next records are
  direct lookups; its `GetRecords` instead scans the shard from the start on
  every call, which gets slower as the shard fills (see `benchmarks/bench_esm_runner.py`).
- `HttpShardReader` uses `GetShardIterator` / `GetRecords` over HTTP, for an
  emulator (or a stream) that is not in this process.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from local_cloud import moto_internals


@dataclass(frozen=True)
class ShardRecord:
    """One Kinesis record as the event source mapping delivers it."""

    sequence_number: str
    partition_key: str
    data_b64: str
    arrival: float  # epoch seconds

    @property
    def size(self) -> int:
        """Payload bytes counted against the 6 MB batch limit."""
        return len(self.data_b64) * 3 // 4 + len(self.partition_key)


class ShardReader(Protocol):
    """Reads one shard of one stream."""

    def read_after(self, sequence: int, limit: int) -> list[ShardRecord]:
        """Up to `limit` records with a sequence number above `sequence`, in order."""
        ...

    def latest_sequence(self) -> int:
        """The highest sequence number in the shard (0 when empty)."""
        ...

    def sequence_at(self, timestamp: float) -> int:
        """The sequence number just before the first record that arrived at or after `timestamp`."""
        ...


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

    def read_after(self, sequence: int, limit: int) -> list[ShardRecord]:
        """Up to `limit` records after `sequence`, by direct lookup (no scan)."""
        out: list[ShardRecord] = []
        records = self._records
        nxt = sequence + 1
        while len(out) < limit:
            record = records.get(nxt)
            if record is None:
                break
            out.append(
                ShardRecord(
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


class HttpShardReader:
    """Reads a shard through the Kinesis API (`GetShardIterator`, `GetRecords`).

    Thread-safe: the poller reads while another thread asks whether it has caught up,
    and both move the one iterator and buffer.
    """

    def __init__(self, client: Any, stream_arn: str, shard_id: str) -> None:
        self._lock = threading.RLock()
        self._client = client
        self._arn = stream_arn
        self._shard_id = shard_id
        self._iterator: str | None = None
        self._iterator_after: int | None = None
        self._buffer: list[ShardRecord] = []

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
        return self._client.get_shard_iterator(**kwargs)["ShardIterator"]

    def read_after(self, sequence: int, limit: int) -> list[ShardRecord]:
        """Up to `limit` records after `sequence`; reuses the iterator while reading forward."""
        with self._lock:
            return self._read_after(sequence, limit)

    def _read_after(self, sequence: int, limit: int) -> list[ShardRecord]:
        self._buffer = [r for r in self._buffer if int(r.sequence_number) > sequence]
        if self._buffer and int(self._buffer[0].sequence_number) != sequence + 1:
            self._buffer = []
        if not self._buffer:
            if self._iterator is None or self._iterator_after != sequence:
                self._iterator = self._iterator_for(sequence)
            response = self._client.get_records(ShardIterator=self._iterator, Limit=10000)
            self._iterator = response.get("NextShardIterator")
            self._buffer = [
                ShardRecord(
                    sequence_number=r["SequenceNumber"],
                    partition_key=r["PartitionKey"],
                    data_b64=base64.b64encode(r["Data"]).decode("ascii"),
                    arrival=r["ApproximateArrivalTimestamp"].timestamp(),
                )
                for r in response["Records"]
            ]
            self._iterator_after = (
                int(self._buffer[-1].sequence_number) if self._buffer else sequence
            )
        return self._buffer[:limit]

    def latest_sequence(self) -> int:
        """Highest sequence number, found by reading forward to the end of the shard."""
        with self._lock:
            sequence = self._iterator_after or 0
            while True:
                batch = self._read_after(sequence, 10000)
                if not batch:
                    return sequence
                sequence = int(batch[-1].sequence_number)

    def sequence_at(self, timestamp: float) -> int:
        """Sequence number before the first record arriving at or after `timestamp`."""
        with self._lock:
            sequence = 0
            while True:
                batch = self._read_after(sequence, 10000)
                for record in batch:
                    if record.arrival >= timestamp:
                        return int(record.sequence_number) - 1
                if not batch:
                    return sequence
                sequence = int(batch[-1].sequence_number)
