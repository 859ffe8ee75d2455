"""What the event source mapping runner reads a shard through, whatever the stream.

A Kinesis stream (`kinesis_reader`) and a DynamoDB table's stream
(`dynamodb_stream_reader`) both number a shard's records upwards; the runner keeps a
position in each shard as an integer (0 before every record) and asks a `ShardReader`
for the records after it. Each source has a reader of moto's objects in this process and
one of its API (`ApiShardReader` holds what those two APIs share: an iterator reused
while reading forward, and a page of records read ahead).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class ShardRecord(Protocol):
    """One record of a shard, as far as the runner's bookkeeping goes."""

    @property
    def sequence_number(self) -> str:
        """The record's sequence number (decimal digits)."""
        ...

    @property
    def arrival(self) -> float:
        """When the record arrived, in epoch seconds."""
        ...

    @property
    def size(self) -> int:
        """Payload bytes counted against the 6 MB batch limit."""
        ...


#: A limit that takes every record of the page read (a page holds at most 10,000).
_WHOLE_PAGE = 1 << 30

R = TypeVar("R", bound=ShardRecord)
R_co = TypeVar("R_co", bound=ShardRecord, covariant=True)


class ShardReader(Protocol[R_co]):
    """Reads one shard of one stream."""

    def read_after(self, sequence: int, limit: int) -> Sequence[R_co]:
        """Up to `limit` records with a sequence number above `sequence`, in order."""
        ...

    def latest_sequence(self) -> int:
        """The highest sequence number in the shard (0 when empty)."""
        ...

    def sequence_at(self, timestamp: float) -> int:
        """The sequence number just before the first record that arrived at or after `timestamp`."""
        ...


class ApiShardReader(Generic[R]):
    """Reads a shard through a stream API's `GetShardIterator` and `GetRecords`.

    Subclasses say how to get an iterator after a sequence number and how to read a page
    of records with one. Thread-safe: the poller reads while another thread asks whether
    it has caught up, and both move the one iterator and buffer.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._iterator: str | None = None
        self._iterator_after: int | None = None
        self._buffer: list[R] = []

    def _iterator_for(self, sequence: int) -> str:
        """A shard iterator at the first record after `sequence`."""
        raise NotImplementedError

    def _get_records(self, iterator: str) -> tuple[list[R], str | None]:
        """One page of records from `iterator`, and the iterator after them."""
        raise NotImplementedError

    def read_after(self, sequence: int, limit: int) -> list[R]:
        """Up to `limit` records after `sequence`; reuses the iterator while reading forward."""
        with self._lock:
            return self._read_after(sequence, limit)

    def _read_after(self, sequence: int, limit: int) -> list[R]:
        self._buffer = [r for r in self._buffer if int(r.sequence_number) > sequence]
        if self._buffer and not self._follows(sequence, self._buffer[0]):
            self._buffer = []
        if not self._buffer:
            if self._iterator is None or self._iterator_after != sequence:
                self._iterator = self._iterator_for(sequence)
            self._buffer, self._iterator = self._get_records(self._iterator)
            self._iterator_after = (
                int(self._buffer[-1].sequence_number) if self._buffer else sequence
            )
        return self._buffer[:limit]

    def _follows(self, sequence: int, record: R) -> bool:
        """Whether `record` is the one right after `sequence` (the buffer may be kept)."""
        return int(record.sequence_number) == sequence + 1

    def latest_sequence(self) -> int:
        """Highest sequence number, found by reading forward to the end of the shard."""
        with self._lock:
            sequence = self._iterator_after or 0
            while True:
                batch = self._read_after(sequence, _WHOLE_PAGE)
                if not batch:
                    return sequence
                sequence = int(batch[-1].sequence_number)

    def sequence_at(self, timestamp: float) -> int:
        """Sequence number before the first record arriving at or after `timestamp`."""
        with self._lock:
            sequence = 0
            while True:
                batch = self._read_after(sequence, _WHOLE_PAGE)
                for record in batch:
                    if record.arrival >= timestamp:
                        return int(record.sequence_number) - 1
                if not batch:
                    return sequence
                sequence = int(batch[-1].sequence_number)
