"""Concurrent, retried BatchWriteItem of readings that are already DynamoDB JSON.

Items of other tables (`SideItem`, such as the alert state's `seen` items) may ride in
the same requests: BatchWriteItem takes up to 25 puts over any tables, so they fill the
readings' requests rather than need requests of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from stream_processor import encoded_requests
from stream_processor.contract import DEVICE_ID, STATE_KIND, TIMESTAMP
from stream_processor.encoded_requests import EncodedItem
from stream_processor.readings import Accepted
from stream_processor.retry import Deadline, is_transient, wait_for_retry

#: BatchWriteItem takes at most 25 put requests.
BATCH_LIMIT = 25


class SideItem(NamedTuple):
    """An item of another table written with the readings: its table, its key attribute
    values as text (device id, then timestamp or kind), its DynamoDB JSON."""

    table: str
    key: tuple[str, str]
    item_json: bytes


class _Put(NamedTuple):
    table: str
    key: tuple[str, str]
    item_json: bytes
    what: Accepted | SideItem


_Key = tuple[str, str, str]


@dataclass
class WriteResult:
    """What a write left undone: readings (and side items) not stored, requests sent, a sample
    error."""

    failed: list[Accepted]
    requests: int
    error: str | None = None
    side_failed: list[SideItem] = field(default_factory=list)


class DynamoDbWriter:
    """Writes readings to one table in 25-item requests, `concurrency` at a time on `executor`.

    Each request retries its throttled or unprocessed items with backoff until
    the deadline; whatever is still unwritten comes back in `WriteResult.failed`.
    """

    def __init__(
        self, client: Any, table_name: str, executor: Executor, concurrency: int = 1
    ) -> None:
        # Requests go through the client's public API; the handlers only spare botocore
        # from serialising items that are already DynamoDB JSON (see encoded_requests).
        encoded_requests.install(client)
        self._client = client
        self._table_name = table_name
        self._executor = executor
        self._concurrency = concurrency

    def write(
        self,
        readings: Sequence[Accepted],
        deadline: Deadline,
        side_items: Sequence[SideItem] = (),
    ) -> WriteResult:
        """Store `readings` (distinct keys) and `side_items`; returns what was not stored."""
        puts = [
            _Put(self._table_name, (r.device_id, r.timestamp), r.item_json, r) for r in readings
        ]
        puts += [_Put(s.table, s.key, s.item_json, s) for s in side_items]
        chunks = [puts[i : i + BATCH_LIMIT] for i in range(0, len(puts), BATCH_LIMIT)]
        if len(chunks) <= 1:
            results = [self._write_chunk(chunk, deadline) for chunk in chunks]
        else:
            # A few long-lived tasks take chunks from a shared queue: one thread hand-off
            # per task rather than one per 25 readings.
            queue: SimpleQueue[Sequence[_Put]] = SimpleQueue()
            for chunk in chunks:
                queue.put(chunk)
            tasks = min(self._concurrency, len(chunks))
            futures = [self._executor.submit(self._drain, queue, deadline) for _ in range(tasks)]
            results = [result for future in futures for result in future.result()]
        failed = [reading for result in results for reading in result.failed]
        side_failed = [item for result in results for item in result.side_failed]
        error = next((r.error for r in results if r.error), None)
        return WriteResult(failed, sum(r.requests for r in results), error, side_failed)

    def _drain(self, queue: SimpleQueue[Sequence[_Put]], deadline: Deadline) -> list[WriteResult]:
        results: list[WriteResult] = []
        while True:
            try:
                chunk = queue.get_nowait()
            except Empty:
                return results
            results.append(self._write_chunk(chunk, deadline))

    def _send(self, puts: Sequence[_Put]) -> dict[str, Any]:
        """One BatchWriteItem call for `puts`; returns botocore's parsed answer."""
        tables: dict[str, list[dict[str, Any]]] = {}
        for put in puts:
            tables.setdefault(put.table, []).append(
                {"PutRequest": {"Item": EncodedItem(put.item_json)}}
            )
        response: dict[str, Any] = self._client.batch_write_item(RequestItems=tables)
        return response

    def _write_chunk(self, chunk: Sequence[_Put], deadline: Deadline) -> WriteResult:
        pending: dict[_Key, _Put] = {(p.table, *p.key): p for p in chunk}
        attempt = requests = 0
        error = None
        while True:
            requests += 1
            try:
                response = self._send(list(pending.values()))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if not is_transient(exc):
                    # A request DynamoDB refuses outright will not get better by retrying;
                    # report its records so Lambda redelivers them rather than lose them.
                    return _result(pending, requests, error)
            else:
                unprocessed = response.get("UnprocessedItems") or {}
                if not any(unprocessed.values()):
                    return WriteResult([], requests, error)
                error = f"{sum(len(u) for u in unprocessed.values())} unprocessed items"
                pending = _still_pending(pending, unprocessed)
            if not wait_for_retry(attempt, deadline):
                return _result(pending, requests, error)
            attempt += 1


def _result(pending: dict[_Key, _Put], requests: int, error: str | None) -> WriteResult:
    """The readings and side items still pending, as a write's result."""
    readings = [p.what for p in pending.values() if type(p.what) is Accepted]
    side = [p.what for p in pending.values() if type(p.what) is SideItem]
    return WriteResult(readings, requests, error, side)


def _still_pending(
    pending: dict[_Key, _Put], unprocessed: dict[str, list[dict[str, Any]]]
) -> dict[_Key, _Put]:
    """The puts DynamoDB handed back; all of them if any key cannot be matched."""
    keys = []
    for table, requests in unprocessed.items():
        for request in requests:
            item = request.get("PutRequest", {}).get("Item", {})
            second = item.get(TIMESTAMP, {}).get("N") or item.get(STATE_KIND, {}).get("S")
            key = (table, item.get(DEVICE_ID, {}).get("S"), second)
            if key not in pending:
                # Unknown spelling of a key: resending the whole chunk is safe (puts are
                # idempotent), dropping a reading is not.
                return pending
            keys.append(key)
    return {key: pending[key] for key in keys}
