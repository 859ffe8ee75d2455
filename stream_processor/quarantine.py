"""Quarantine: payloads that cannot be stored go to S3 as JSON Lines, raw bytes kept."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from stream_processor import contract
from stream_processor.kinesis import StreamRecord
from stream_processor.readings import Rejected
from stream_processor.retry import Deadline, call_with_retries


@dataclass
class QuarantineResult:
    """Records whose quarantine object could not be written, and why."""

    failed: list[StreamRecord]
    objects: int
    error: str | None = None


def quarantine_line(
    record: StreamRecord, rejected: Rejected, quarantined_at: str
) -> dict[str, object]:
    """One quarantine line, with exactly the contract's fields."""
    raw = base64.b64encode(record.data).decode("ascii") if record.decoded else record.data.decode()
    values = (
        rejected.reason,
        rejected.detail,
        rejected.device_id,
        raw,
        record.sequence_number,
        record.partition_key,
        record.approximate_arrival_timestamp,
        record.event_source_arn,
        quarantined_at,
    )
    return dict(zip(contract.QUARANTINE_FIELDS, values, strict=True))


def object_key(prefix: str, date: str, records: Sequence[StreamRecord]) -> str:
    """A key that is the same each time the same records are quarantined.

    A redelivered batch therefore overwrites its earlier object instead of
    adding a second copy of every line.
    """
    digest = hashlib.sha256("\n".join(r.sequence_number for r in records).encode()).hexdigest()
    return (
        f"{prefix}dt={date}/{records[0].shard_id}-{records[0].sequence_number}-{digest[:16]}.jsonl"
    )


class QuarantineWriter:
    """Writes one JSON Lines object per batch and arrival date to the quarantine bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def write(
        self, entries: Sequence[tuple[StreamRecord, Rejected]], deadline: Deadline
    ) -> QuarantineResult:
        """Quarantine `entries`; records whose object could not be written are returned."""
        now = time.time()
        quarantined_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        by_date: dict[str, list[tuple[StreamRecord, Rejected]]] = defaultdict(list)
        for record, rejected in entries:
            arrival = record.approximate_arrival_timestamp
            arrived = now if arrival is None else arrival
            by_date[time.strftime("%Y-%m-%d", time.gmtime(arrived))].append((record, rejected))
        failed: list[StreamRecord] = []
        error = None
        for date, group in sorted(by_date.items()):
            records = [record for record, _ in group]
            # ASCII-escaped JSON: a payload's broken Unicode cannot break the file.
            body = "".join(
                json.dumps(quarantine_line(r, rej, quarantined_at)) + "\n" for r, rej in group
            ).encode("ascii")
            key = object_key(self._prefix, date, records)
            try:
                call_with_retries(partial(self._put, key, body), deadline)
            except Exception as exc:
                # Not quarantined means not handled: Lambda must deliver these again.
                failed.extend(records)
                error = f"{type(exc).__name__}: {exc}"
        return QuarantineResult(failed, len(by_date), error)

    def _put(self, key: str, body: bytes) -> None:
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson"
        )
