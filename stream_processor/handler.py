"""The Lambda entry point: a Kinesis batch in, a partial batch response out.

Every record ends as exactly one of: stored in DynamoDB, quarantined in S3, or
reported in `batchItemFailures` so Lambda delivers it again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from stream_processor import contract
from stream_processor.alerts import ALERT_CONCURRENCY, AlertTracker
from stream_processor.attribute_values import format_number
from stream_processor.aws_clients import make_client
from stream_processor.config import Config, load_config
from stream_processor.dynamodb_writer import DynamoDbWriter
from stream_processor.kinesis import StreamRecord, read_records
from stream_processor.quarantine import QuarantineWriter
from stream_processor.readings import Accepted, Rejected, classify
from stream_processor.retry import Deadline
from stream_processor.telemetry import batch_log_line, emit

__all__ = ["StreamProcessor", "handler", "load_config"]

_SECONDS_PER_DAY = 86400


def _sequence_order(sequence_number: str) -> tuple[int, str]:
    # Kinesis sequence numbers are decimal strings: longer means larger.
    return len(sequence_number), sequence_number


class StreamProcessor:
    """Validates, classifies and stores Kinesis batches for one configuration.

    Holds its clients and thread pool for the life of the execution environment;
    `process` is safe to call from several threads at once.
    """

    def __init__(
        self,
        config: Config,
        dynamodb: Any = None,
        s3: Any = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        pool = config.write_concurrency + 1  # one spare connection for the quarantine upload
        if config.alerts_enabled:
            pool += ALERT_CONCURRENCY
        # `executor` is for tools, e.g. a profiler that wants every task on one thread.
        self._executor = executor or ThreadPoolExecutor(
            max_workers=config.write_concurrency, thread_name_prefix="stream-processor"
        )
        dynamodb = dynamodb or make_client("dynamodb", pool)
        self._writer = DynamoDbWriter(
            dynamodb,
            config.table_name,
            self._executor,
            config.write_concurrency,
        )
        self._quarantine = QuarantineWriter(
            s3 or make_client("s3", pool), config.quarantine_bucket, config.quarantine_prefix
        )
        # Without an alert table and bus, readings are classified and stored, nothing more.
        self._alerts = AlertTracker(config, dynamodb) if config.alerts_enabled else None

    def close(self) -> None:
        """Stop the writer threads (tools and tests; Lambda simply freezes the process)."""
        self._executor.shutdown(wait=True)
        if self._alerts is not None:
            self._alerts.close()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StreamProcessor:
        """A processor configured from an environment mapping (a function's settings)."""
        return cls(load_config(environ))

    def process(self, event: dict[str, Any], context: object = None) -> dict[str, Any]:
        """Handle one Kinesis event; returns the partial batch response."""
        started = time.perf_counter()
        deadline = Deadline(context)
        records = read_records(event)
        config = self.config
        # The alert state's lease is read while the records are classified.
        shard = f"{records[0].event_source_arn}/{records[0].shard_id}" if records else ""
        lease = self._alerts.begin(shard, deadline) if self._alerts and records else None
        # One instant for the batch, to the millisecond it is stored with: the TTL counts from
        # the stored ingestion time, so expires_at is int(ingested_at) + TTL even when the
        # clock is a fraction of a millisecond before a whole second.
        now = round(time.time(), 3)
        ingested_at = format_number(now)
        expires_at = str(int(now) + config.ttl_days * _SECONDS_PER_DAY)

        latest: dict[tuple[str, str], tuple[StreamRecord, Accepted]] = {}
        superseded: dict[tuple[str, str], list[str]] = {}
        rejected: list[tuple[StreamRecord, Rejected]] = []
        for record in records:
            outcome: Accepted | Rejected
            if record.decoded:
                arrival = record.approximate_arrival_timestamp
                # Without an arrival time (not from a mapping), the reading is judged
                # against now, which is never earlier than its arrival.
                outcome = classify(
                    record.data,
                    record.sequence_number,
                    now if arrival is None else arrival,
                    ingested_at,
                    expires_at,
                    config,
                )
            else:
                outcome = Rejected(contract.INVALID_JSON, "the record's data is not base64")
            if type(outcome) is Rejected:
                rejected.append((record, outcome))
                continue
            assert type(outcome) is Accepted  # for mypy: a named tuple does not narrow
            key = (outcome.device_id, outcome.timestamp)
            previous = latest.get(key)
            if previous is not None:
                # One key, one write per request (BatchWriteItem refuses duplicates):
                # the latest record wins, the others share its fate.
                older, newer = sorted(
                    (previous, (record, outcome)),
                    key=lambda pair: _sequence_order(pair[0].sequence_number),
                )
                superseded.setdefault(key, []).append(older[0].sequence_number)
                latest[key] = newer
            else:
                latest[key] = (record, outcome)

        quarantine_job = (
            self._executor.submit(self._quarantine.write, rejected, deadline) if rejected else None
        )
        # Alert state changes are decided beside the writes: they need the batch's readings,
        # not their items in the table. The look-ups they need go out before the writes.
        alert_job = (
            self._executor.submit(
                self._alerts.track,
                self._alerts.plan(
                    [
                        (a.device_id, r.sequence_number, a.seconds, a.temperature, a.humidity)
                        for r, a in latest.values()
                    ],
                    now,
                    shard,
                    lease,
                    deadline,
                ),
                deadline,
            )
            if self._alerts is not None and lease is not None and latest
            else None
        )
        written = self._writer.write([accepted for _, accepted in latest.values()], deadline)
        quarantined = quarantine_job.result() if quarantine_job else None
        alerts = alert_job.result() if alert_job else None

        failed_writes: list[str] = []
        for reading in written.failed:
            key = (reading.device_id, reading.timestamp)
            failed_writes.append(latest[key][0].sequence_number)
            failed_writes.extend(superseded.get(key, ()))
        failed_quarantine = [r.sequence_number for r in quarantined.failed] if quarantined else []
        failed_alerts = alerts.failed if alerts else []
        failed = sorted(set(failed_writes + failed_quarantine + failed_alerts), key=_sequence_order)

        duplicates = sum(len(seqs) for seqs in superseded.values())
        counts = {
            "records": len(records),
            "stored": len(latest) + duplicates - len(failed_writes),
            "quarantined": len(rejected) - len(failed_quarantine),
            "failed": len(failed),
            "duplicates": duplicates,
        }
        extra: dict[str, object] = {
            "write_requests": written.requests,
            "quarantine_objects": quarantined.objects if quarantined else 0,
        }
        if alerts is not None:
            extra["alert_changes"] = alerts.changes
            extra["alert_lookups"] = alerts.lookups
        errors = [
            e
            for e in (written.error, quarantined and quarantined.error, alerts and alerts.error)
            if e
        ]
        if errors:
            extra["errors"] = errors
        emit(
            batch_log_line(
                counts,
                (time.perf_counter() - started) * 1000,
                records[0].shard_id if records else None,
                getattr(context, "function_name", None)
                or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
                extra,
            )
        )
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}


_processor: StreamProcessor | None = None
_processor_lock = threading.Lock()


def _cold_start() -> StreamProcessor:
    """Build the processor on first use, then reuse it for every invocation.

    Built on the first call rather than at import so importing the module (tools,
    packaging checks) does not need the function's settings; a missing setting
    still fails the first invocation loudly, naming the variable.
    """
    global _processor
    if _processor is None:
        with _processor_lock:
            if _processor is None:
                _processor = StreamProcessor.from_environ(os.environ)
    return _processor


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point for the Kinesis event source mapping (ReportBatchItemFailures)."""
    return _cold_start().process(event, context)
