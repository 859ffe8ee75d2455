"""Concurrent, retried BatchWriteItem of readings that are already DynamoDB JSON."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from stream_processor import encoded_requests
from stream_processor.contract import DEVICE_ID, TIMESTAMP
from stream_processor.encoded_requests import EncodedItem
from stream_processor.readings import Accepted
from stream_processor.retry import Deadline, is_transient, wait_for_retry

#: BatchWriteItem takes at most 25 put requests.
BATCH_LIMIT = 25

_Key = tuple[str, str]


@dataclass
class WriteResult:
    """What a write left undone: readings not stored, requests sent, a sample error."""

    failed: list[Accepted]
    requests: int
    error: str | None = None


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

    def write(self, readings: Sequence[Accepted], deadline: Deadline) -> WriteResult:
        """Store `readings` (distinct keys); returns those that could not be stored."""
        chunks = [readings[i : i + BATCH_LIMIT] for i in range(0, len(readings), BATCH_LIMIT)]
        if len(chunks) <= 1:
            results = [self._write_chunk(chunk, deadline) for chunk in chunks]
        else:
            # A few long-lived tasks take chunks from a shared queue: one thread hand-off
            # per task rather than one per 25 readings.
            queue: SimpleQueue[Sequence[Accepted]] = SimpleQueue()
            for chunk in chunks:
                queue.put(chunk)
            tasks = min(self._concurrency, len(chunks))
            futures = [self._executor.submit(self._drain, queue, deadline) for _ in range(tasks)]
            results = [result for future in futures for result in future.result()]
        failed = [reading for result in results for reading in result.failed]
        error = next((r.error for r in results if r.error), None)
        return WriteResult(failed, sum(r.requests for r in results), error)

    def _drain(
        self, queue: SimpleQueue[Sequence[Accepted]], deadline: Deadline
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        while True:
            try:
                chunk = queue.get_nowait()
            except Empty:
                return results
            results.append(self._write_chunk(chunk, deadline))

    def _send(self, readings: Sequence[Accepted]) -> dict[str, Any]:
        """One BatchWriteItem call for `readings`; returns botocore's parsed answer."""
        puts = [{"PutRequest": {"Item": EncodedItem(r.item_json)}} for r in readings]
        response: dict[str, Any] = self._client.batch_write_item(
            RequestItems={self._table_name: puts}
        )
        return response

    def _write_chunk(self, chunk: Sequence[Accepted], deadline: Deadline) -> WriteResult:
        pending: dict[_Key, Accepted] = {(r.device_id, r.timestamp): r for r in chunk}
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
                    return WriteResult(list(pending.values()), requests, error)
            else:
                unprocessed = (response.get("UnprocessedItems") or {}).get(self._table_name)
                if not unprocessed:
                    return WriteResult([], requests, error)
                error = f"{len(unprocessed)} unprocessed items"
                pending = _still_pending(pending, unprocessed)
            if not wait_for_retry(attempt, deadline):
                return WriteResult(list(pending.values()), requests, error)
            attempt += 1


def _still_pending(
    pending: dict[_Key, Accepted], unprocessed: list[dict[str, Any]]
) -> dict[_Key, Accepted]:
    """The readings DynamoDB handed back; all of them if any key cannot be matched."""
    keys = []
    for request in unprocessed:
        item = request.get("PutRequest", {}).get("Item", {})
        key = (item.get(DEVICE_ID, {}).get("S"), item.get(TIMESTAMP, {}).get("N"))
        if key not in pending:
            # Unknown spelling of a key: resending the whole chunk is safe (puts are
            # idempotent), dropping a reading is not.
            return pending
        keys.append(key)
    return {key: pending[key] for key in keys}
