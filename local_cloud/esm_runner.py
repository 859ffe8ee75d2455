"""The stream -> Lambda event source mapping runner of the local cloud: Kinesis streams
and DynamoDB tables' streams.

moto stores event source mappings but does not act on them (it tries to run the
function in Docker on every `PutRecord` and every write to a mapped table, which we
switch off). This runner does what Lambda's pollers do: for every Kinesis or DynamoDB
stream mapping in the emulator it polls each shard and invokes the function (in an
execution environment of its own, a worker process, with `function_processes`; else its
handler in this process), one batch per shard in flight, records of a shard in order,
with the event Lambda sends for that source (`kinesis_event`, `dynamodb_event`),
honouring the mapping's settings: `BatchSize`, `MaximumBatchingWindowInSeconds`, the
6 MB payload limit, `StartingPosition`, `FilterCriteria` (records no filter matches are
dropped before batching and count as processed, see `event_filter`),
`FunctionResponseTypes: [ReportBatchItemFailures]`, `MaximumRetryAttempts`,
`MaximumRecordAgeInSeconds`, `BisectBatchOnFunctionError`, `DestinationConfig.OnFailure`
(with `KinesisBatchInfo` or `DDBStreamBatchInfo`) and `Enabled`.

Limitations when functions run in this process: they share `os.environ` (each
function's variables are applied at its cold start, so two functions setting the
same variable differently will see the last one) and a timeout is reported through
the context but not enforced; in worker processes each function has its own
environment and a timeout stops the invocation (and its sandbox) as Lambda does.
Either way a function updated after its cold start keeps its first configuration
until the runner restarts. A
`ParallelizationFactor` above 1 is not honoured: a shard always has one batch in
flight, as with the default of 1 (the runner logs a warning for such a mapping). A
mapping whose filter pattern Lambda would have rejected is logged and not acted on.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3

from local_cloud import defaults, dynamodb_stream_reader, moto_internals
from local_cloud.dynamodb_stream_reader import (
    BackendStreamReader,
    HttpStreamReader,
    TableStreamRecord,
    moto_stream_shard,
)
from local_cloud.emf_metrics import EmfPublisher
from local_cloud.esm_checkpoints import CheckpointStore
from local_cloud.event_filter import EventFilter, event_filter, filter_patterns
from local_cloud.kinesis_reader import (
    BackendShardReader,
    HttpShardReader,
    KinesisRecord,
    moto_stream,
)
from local_cloud.lambda_metrics import IteratorAges
from local_cloud.lambda_runtime import FunctionConfig, LocalFunction
from local_cloud.lambda_sandbox import SandboxFunction
from local_cloud.shard_reader import ShardReader, ShardRecord

log = logging.getLogger(__name__)

#: Lambda sends a batch when its payload reaches 6 MB.
MAX_BATCH_BYTES = 6 * 1024 * 1024
_MAX_BACKOFF_S = 1.0


@dataclass(frozen=True)
class MappingSettings:
    """A stream event source mapping's settings, with Lambda's defaults filled in."""

    uuid: str
    function_arn: str
    stream_arn: str
    enabled: bool = True
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    report_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    on_failure_arn: str | None = None
    parallelization_factor: int = 1
    #: The `Pattern` of each of `FilterCriteria`'s filters.
    filter_patterns: tuple[str, ...] = ()

    @property
    def source(self) -> str | None:
        """The kind of stream: "kinesis", or "dynamodb" for a table's; None for a source
        the runner leaves alone (a queue)."""
        if self.stream_arn.split(":")[2:3] == ["kinesis"]:
            return "kinesis"
        if dynamodb_stream_reader.is_stream_arn(self.stream_arn):
            return "dynamodb"
        return None

    @classmethod
    def from_api(cls, m: dict[str, Any]) -> MappingSettings:
        """Build from one `ListEventSourceMappings` entry."""
        timestamp = m.get("StartingPositionTimestamp")
        if isinstance(timestamp, dt.datetime):
            timestamp = timestamp.timestamp()
        retries = m.get("MaximumRetryAttempts")
        age = m.get("MaximumRecordAgeInSeconds")
        return cls(
            uuid=m["UUID"],
            function_arn=m["FunctionArn"],
            stream_arn=m["EventSourceArn"],
            enabled=m.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
            batch_size=int(m.get("BatchSize") or 100),
            batching_window_s=float(m.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=m.get("StartingPosition") or "TRIM_HORIZON",
            starting_timestamp=timestamp,
            report_item_failures="ReportBatchItemFailures"
            in (m.get("FunctionResponseTypes") or []),
            bisect_on_error=bool(m.get("BisectBatchOnFunctionError")),
            max_retry_attempts=-1 if retries is None else int(retries),
            max_record_age_s=-1 if age is None else int(age),
            on_failure_arn=((m.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                "Destination"
            )
            or None,
            parallelization_factor=int(m.get("ParallelizationFactor") or 1),
            filter_patterns=filter_patterns(m.get("FilterCriteria")),
        )


@dataclass
class EsmCounters:
    """What the runner has done since it started."""

    batches_invoked: int = 0
    records_delivered: int = 0
    function_errors: int = 0
    records_discarded: int = 0
    records_sent_to_on_failure: int = 0
    #: Records read and dropped because no filter of the mapping matched them.
    records_filtered_out: int = 0


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = EsmCounters()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._values, name, getattr(self._values, name) + delta)

    def snapshot(self) -> EsmCounters:
        with self._lock:
            return replace(self._values)


class _InvalidBatchResponse(Exception):
    """A ReportBatchItemFailures response Lambda would reject: the whole batch failed."""


@dataclass
class _Batch:
    records: list[Any]  # ShardRecords, of one shard, in order
    #: The sequence number of the last record read for this batch, delivered or filtered
    #: out: where the shard's position moves when the batch is done.
    through: int
    retries: int = 0  # failed attempts so far (bisecting does not add to it)
    invokes: int = 0
    last_error: str | None = None

    def part(self, start: int, end: int | None = None) -> _Batch:
        """Some of the batch's records, with its attempts so far; the last part keeps
        `through`, an earlier one ends at its own last record."""
        records = self.records[start:end]
        last = end is None or end >= len(self.records)
        through = self.through if last else int(records[-1].sequence_number)
        return _Batch(records, through, self.retries, self.invokes, self.last_error)


def lowest_failure_index(response: Any, records: Sequence[ShardRecord]) -> int | None:
    """Index of the lowest reported failure, or None when the batch succeeded.

    Raises `_InvalidBatchResponse` for identifiers Lambda cannot use: empty, null,
    not a string, or not a sequence number of this batch.
    """
    if not isinstance(response, dict):
        return None  # Lambda ignores a response that is not a partial-batch response
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        raise _InvalidBatchResponse(f"batchItemFailures is not a list: {failures!r}")
    positions = {r.sequence_number: i for i, r in enumerate(records)}
    lowest: int | None = None
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            raise _InvalidBatchResponse(f"invalid itemIdentifier: {failure!r}")
        index = positions[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


def kinesis_event(
    records: Sequence[KinesisRecord], shard_id: str, stream_arn: str, region: str, role: str
) -> dict[str, Any]:
    """The event Lambda passes to a function for a batch of Kinesis records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": r.data_b64,
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def kinesis_filterable(event_record: dict[str, Any]) -> dict[str, Any]:
    """What a filter pattern is matched against for a Kinesis record (its place in the
    event): the record's `kinesis` part, `data` the payload's JSON (absent when it is not)."""
    fields = dict(event_record["kinesis"])
    try:
        fields["data"] = json.loads(base64.b64decode(fields["data"]))
    except ValueError:  # not JSON (or not UTF-8): nothing on `data` matches it
        del fields["data"]
    return fields


def dynamodb_event(
    records: Sequence[TableStreamRecord], stream_arn: str, region: str
) -> dict[str, Any]:
    """The event Lambda passes to a function for a batch of a table's stream records."""
    events = []
    for r in records:
        change = copy.deepcopy(r.change)  # every delivery gets its own (handlers may mutate)
        dynamodb: dict[str, Any] = {
            # Whole seconds, as DynamoDB Streams reports it by default.
            "ApproximateCreationDateTime": int(r.arrival),
            "Keys": change["Keys"],
        }
        for image in ("NewImage", "OldImage"):
            if image in change:
                dynamodb[image] = change[image]
        for name in ("SequenceNumber", "SizeBytes", "StreamViewType"):
            dynamodb[name] = change[name]
        events.append(
            {
                "eventID": r.event_id,
                "eventName": r.event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": events}


@dataclass(frozen=True)
class _Source:
    """What differs between the streams a mapping can read."""

    #: The event for a batch: (records, shard id, stream ARN, region, function role).
    event: Callable[[list[Any], str, str, str, str], dict[str, Any]]
    #: What a filter pattern is matched against, given the record's place in the event.
    filterable: Callable[[dict[str, Any]], dict[str, Any]]
    #: The key of the batch's description in an on-failure invocation record.
    batch_info: str


_SOURCES = {
    "kinesis": _Source(kinesis_event, kinesis_filterable, "KinesisBatchInfo"),
    "dynamodb": _Source(
        lambda records, _shard, arn, region, _role: dynamodb_event(records, arn, region),
        lambda event_record: event_record,
        "DDBStreamBatchInfo",
    ),
}


def _iso(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def on_failure_record(
    batch: _Batch,
    condition: str,
    function_arn: str,
    shard_id: str,
    stream_arn: str,
    batch_info: str = "KinesisBatchInfo",
) -> dict[str, Any]:
    """The invocation record Lambda sends to a mapping's on-failure destination;
    `batch_info` names the batch's description (`DDBStreamBatchInfo` for a table's stream)."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if batch.last_error is not None:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": batch.invokes,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(time.time()),
        batch_info: {
            "shardId": shard_id,
            "startSequenceNumber": batch.records[0].sequence_number,
            "endSequenceNumber": batch.records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(batch.records[0].arrival),
            "approximateArrivalOfLastRecord": _iso(batch.records[-1].arrival),
            "batchSize": len(batch.records),
            "streamArn": stream_arn,
        },
    }


class _ShardPoller(threading.Thread):
    """Polls one shard for one mapping; one batch in flight at a time."""

    def __init__(
        self,
        runner: EventSourceMappingRunner,
        settings: MappingSettings,
        function: LocalFunction | SandboxFunction,
        shard_id: str,
        reader: ShardReader[Any],
    ) -> None:
        super().__init__(name=f"esm-{settings.uuid[:8]}-{shard_id}", daemon=True)
        self.settings = settings  # replaced by the runner when the mapping changes
        self._runner = runner
        self._function = function
        self._shard_id = shard_id
        self._reader = reader
        self._source = _SOURCES[settings.source or "kinesis"]
        self._pending: deque[_Batch] = deque()
        self._halt = threading.Event()
        self._position = self._initial_position()

    def _initial_position(self) -> int:
        s = self.settings
        stored = self._runner.checkpoints.get(s.uuid, self._shard_id)
        if stored is not None:
            latest = self._reader.latest_sequence()
            if stored <= latest:
                return stored
            # The shard no longer holds the records the checkpoint counted (a table's
            # stream numbers a new shard from the same first number): read it all, rather
            # than skip what was written since.
            log.warning(
                "mapping %s: checkpoint %d is past the last record (%d) of %s; reading it "
                "from its start",
                s.uuid,
                stored,
                latest,
                self._shard_id,
            )
            position = 0
        elif s.starting_position == "LATEST":
            position = self._reader.latest_sequence()
        elif s.starting_position == "AT_TIMESTAMP" and s.starting_timestamp is not None:
            position = self._reader.sequence_at(s.starting_timestamp)
        else:
            position = 0
        # Remember where LATEST pointed, so a restart does not skip what came since.
        self._runner.checkpoints.put(s.uuid, self._shard_id, position)
        return position

    def stop(self) -> None:
        self._halt.set()

    def caught_up(self) -> bool:
        """True when every record in the shard has been handled (or the mapping is off)."""
        if not self.settings.enabled:
            return True
        return not self._pending and self._position >= self._reader.latest_sequence()

    def run(self) -> None:
        poll = self._runner.poll_interval
        while not self._halt.is_set():
            try:
                if not self.settings.enabled:
                    self._halt.wait(poll)
                    continue
                if not self._pending:
                    batch = self._collect()
                    if batch is None:
                        self._halt.wait(poll)
                        continue
                    if not batch.records:  # every record read was filtered out
                        self._checkpoint_at(batch.through)
                        continue
                    self._pending.append(batch)
                self._process(self._pending[0])
            except Exception:  # keep polling: the pending batch is retried, nothing is lost
                log.exception("event source mapping %s, %s", self.settings.uuid, self._shard_id)
                self._halt.wait(_MAX_BACKOFF_S)

    def _collect(self) -> _Batch | None:
        """The next batch after the position: up to `BatchSize` records that pass the
        mapping's filters, gathered for up to `MaximumBatchingWindowInSeconds`, within the
        payload limit; None when the shard holds nothing new."""
        s = self.settings
        filters = event_filter(s.filter_patterns)
        records: list[Any] = []
        through = self._position
        deadline = time.monotonic() + s.batching_window_s
        while len(records) < s.batch_size and not self._halt.is_set():
            wanted = s.batch_size - len(records)
            read = self._reader.read_after(through, wanted)
            if read:
                through = int(read[-1].sequence_number)
                passed = [r for r in read if self._passes(filters, r)] if filters else read
                if len(passed) < len(read):
                    self._runner.counters_.add(records_filtered_out=len(read) - len(passed))
                records += passed
            if len(read) == wanted:
                continue  # the shard may hold more already (the filters dropped some)
            remaining = deadline - time.monotonic()
            if not records or remaining <= 0:
                break
            self._halt.wait(min(self._runner.poll_interval, remaining))
        if through == self._position:
            return None
        batch = _Batch(records, through)
        size = 0
        for i, record in enumerate(records):
            size += record.size
            if size > MAX_BATCH_BYTES and i > 0:
                return batch.part(0, i)
        return batch

    def _passes(self, filters: EventFilter, record: Any) -> bool:
        s = self.settings
        (event_record,) = self._source.event(
            [record], self._shard_id, s.stream_arn, self._runner.region, self._function_role
        )["Records"]
        return filters.passes(self._source.filterable(event_record))

    def _checkpoint_at(self, sequence: int) -> None:
        self._position = sequence
        self._runner.checkpoints.put(self.settings.uuid, self._shard_id, sequence)

    def _discard(self, batch: _Batch, condition: str) -> None:
        """Skip a batch Lambda gave up on, telling the on-failure destination first."""
        s = self.settings
        if s.on_failure_arn:
            record = on_failure_record(
                batch,
                condition,
                s.function_arn,
                self._shard_id,
                s.stream_arn,
                self._source.batch_info,
            )
            self._runner.send_on_failure(s.on_failure_arn, record)
            self._runner.counters_.add(records_sent_to_on_failure=len(batch.records))
        self._runner.counters_.add(records_discarded=len(batch.records))
        self._checkpoint_at(batch.through)

    def _process(self, batch: _Batch) -> None:
        s = self.settings
        if s.max_record_age_s >= 0:
            now = time.time()
            fresh = [r for r in batch.records if now - r.arrival <= s.max_record_age_s]
            if len(fresh) < len(batch.records):
                old = len(batch.records) - len(fresh)
                if not fresh:
                    self._discard(batch, "RecordAgeExceeded")
                    self._pending.popleft()
                    return
                self._discard(batch.part(0, old), "RecordAgeExceeded")
                batch.records = fresh
                return

        event = self._source.event(
            batch.records, self._shard_id, s.stream_arn, self._runner.region, self._function_role
        )
        batch.invokes += 1
        self._runner.counters_.add(batches_invoked=1, records_delivered=len(batch.records))
        if self._runner.iterator_ages is not None:
            age_ms = (time.time() - batch.records[-1].arrival) * 1000
            self._runner.iterator_ages.record(self._function.config.name, age_ms)
        failed_at: int | None = None
        try:
            response = self._function.invoke(event)
            if s.report_item_failures:
                failed_at = lowest_failure_index(response, batch.records)
        except Exception as exc:  # the function's error, or a response Lambda rejects
            self._on_function_error(batch, f"{type(exc).__name__}: {exc}")
            return

        if failed_at is None:
            self._pending.popleft()
            self._checkpoint_at(batch.through)
            return
        # Partial failure: checkpoint before the lowest failure, redeliver from it on.
        if failed_at > 0:
            self._checkpoint_at(int(batch.records[failed_at - 1].sequence_number))
        batch.records = batch.records[failed_at:]
        batch.retries += 1
        batch.last_error = None
        self._retry_or_discard(batch)

    @property
    def _function_role(self) -> str:
        return self._function.config.role

    def _on_function_error(self, batch: _Batch, error: str) -> None:
        self._runner.counters_.add(function_errors=1)
        # Lambda would write this to the function's log group; here it goes to our log.
        log.warning(
            "function %s failed on %d records of %s: %s",
            self._function.config.name,
            len(batch.records),
            self._shard_id,
            error,
        )
        batch.last_error = error
        if self.settings.bisect_on_error and len(batch.records) > 1:
            # Splitting does not use up retries: both halves keep the batch's count.
            half = len(batch.records) // 2
            first, second = batch.part(0, half), batch.part(half)
            self._pending.popleft()
            self._pending.extendleft([second, first])
            return
        batch.retries += 1
        self._retry_or_discard(batch)

    def _retry_or_discard(self, batch: _Batch) -> None:
        limit = self.settings.max_retry_attempts
        if limit >= 0 and batch.retries > limit:
            self._discard(batch, "RetryAttemptsExhausted")
            self._pending.popleft()
            return
        self._halt.wait(min(0.02 * 2 ** (batch.retries - 1), _MAX_BACKOFF_S))


class EventSourceMappingRunner:
    """Acts on the emulator's Kinesis and DynamoDB stream event source mappings.

    `endpoint_url` is the emulator's; `state_dir` keeps the shard checkpoints;
    `log_dir`, when given, receives each function's output (see `lambda_runtime`), and
    the EMF metrics in it, with Lambda's `IteratorAge` (see `lambda_metrics`), are put
    into the emulator's CloudWatch.
    `record_source` is "auto" (moto's in-process objects when the stream or table is in
    this process, else the Kinesis or DynamoDB Streams API), "backend" or "http".
    `mapping_filter`, when given, picks the mappings this runner acts on (all of a
    Kinesis stream or a table's stream by default).
    `function_processes` runs each function in execution environments of its own (worker
    processes, see `lambda_sandbox`), as Lambda does; otherwise handlers run in this
    process (see `lambda_runtime`).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str = defaults.REGION,
        state_dir: str | Path = defaults.STATE_DIR / "esm",
        *,
        poll_interval: float = 0.02,
        refresh_interval: float = 1.0,
        record_source: str = "auto",
        mapping_filter: Callable[[MappingSettings], bool] | None = None,
        log_dir: str | Path | None = None,
        function_processes: bool = False,
    ) -> None:
        if record_source not in ("auto", "backend", "http"):
            raise ValueError(f"record_source must be auto, backend or http: {record_source!r}")
        self.endpoint_url = endpoint_url
        self.region = region
        self.state_dir = Path(state_dir)
        self.poll_interval = poll_interval
        self.refresh_interval = refresh_interval
        self.record_source = record_source
        self.mapping_filter = mapping_filter
        self.log_dir = log_dir
        self.function_processes = function_processes
        session = boto3.session.Session(
            aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=defaults.CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self._clients = {
            name: session.client(name, endpoint_url=endpoint_url)
            for name in ("lambda", "kinesis", "dynamodbstreams", "sqs", "sns", "cloudwatch")
        }
        self.checkpoints: CheckpointStore | Any = None
        #: Lambda's IteratorAge metric, put into the emulator's CloudWatch with the functions'
        #: own metrics (when their logs are kept, as in the local cloud).
        self.iterator_ages = (
            IteratorAges(self._clients["cloudwatch"]) if log_dir is not None else None
        )
        self.counters_ = _Counters()
        self._functions: dict[str, LocalFunction | SandboxFunction] = {}
        self._pollers: dict[tuple[str, str], _ShardPoller] = {}
        self._warned_parallelization: set[str] = set()
        self._rejected_filters: set[tuple[str, tuple[str, ...]]] = set()
        self._unreadable: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def counters(self) -> EsmCounters:
        """A snapshot of batches invoked, records delivered, errors and discards."""
        return self.counters_.snapshot()

    def start(self) -> EventSourceMappingRunner:
        """Start polling every stream mapping; new mappings are picked up within a second."""
        self.checkpoints = CheckpointStore(self.state_dir)
        self._stop.clear()
        self.refresh()
        self._supervisor = threading.Thread(target=self._supervise, name="esm-runner", daemon=True)
        self._supervisor.start()
        return self

    def stop(self) -> None:
        """Stop polling; checkpoints stay in the state dir for the next start."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        with self._refresh_lock:
            for poller in self._pollers.values():
                poller.stop()
            for poller in self._pollers.values():
                poller.join()
            self._pollers.clear()
        for function in self._functions.values():
            function.close()
        self._functions.clear()
        if self.checkpoints is not None:
            self.checkpoints.close()
            self.checkpoints = None

    def wait_until_drained(self, timeout: float = 10.0) -> None:
        """Block until every enabled mapping has handled every record now in its stream.

        Raises TimeoutError naming the shards still behind.
        """
        self.refresh()
        deadline = time.monotonic() + timeout
        while True:
            with self._refresh_lock:
                behind = [name for name, p in self._pollers.items() if not p.caught_up()]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"event source mappings still behind after {timeout}s: {behind}")
            time.sleep(self.poll_interval)

    def _supervise(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except Exception:
                log.exception("could not refresh event source mappings")
            if self.iterator_ages is not None:
                self.iterator_ages.flush()

    def refresh(self) -> None:
        """Bring the pollers in line with the mappings deployed in the emulator now."""
        mappings = []
        for page in self._clients["lambda"].get_paginator("list_event_source_mappings").paginate():
            for m in page["EventSourceMappings"]:
                settings = MappingSettings.from_api(m)
                if settings.source is None:
                    continue
                if self.mapping_filter is not None and not self.mapping_filter(settings):
                    continue
                if self._filters_accepted(settings):
                    mappings.append(settings)
        with self._refresh_lock:
            if self._stop.is_set():
                return
            live: set[tuple[str, str]] = set()
            for settings in mappings:
                try:
                    shards = self._shards(settings)
                except Exception as exc:  # one stream out of reach must not hold up the others
                    if settings.uuid not in self._unreadable:
                        self._unreadable.add(settings.uuid)
                        log.warning(
                            "mapping %s: cannot list the shards of %s (%s: %s); trying again",
                            settings.uuid,
                            settings.stream_arn,
                            type(exc).__name__,
                            exc,
                        )
                    live.update(key for key in self._pollers if key[0] == settings.uuid)
                    continue
                self._unreadable.discard(settings.uuid)
                for shard_id, reader in shards:
                    key = (settings.uuid, shard_id)
                    live.add(key)
                    poller = self._pollers.get(key)
                    if poller is not None:
                        poller.settings = settings
                        continue
                    if (
                        settings.parallelization_factor > 1
                        and settings.uuid not in self._warned_parallelization
                    ):
                        self._warned_parallelization.add(settings.uuid)
                        log.warning(
                            "mapping %s asks for ParallelizationFactor %d; the local runner "
                            "keeps one batch in flight per shard (ordering is unchanged)",
                            settings.uuid,
                            settings.parallelization_factor,
                        )
                    function = self.function(settings.function_arn)
                    poller = _ShardPoller(self, settings, function, shard_id, reader)
                    self._pollers[key] = poller
                    poller.start()
            for key in set(self._pollers) - live:
                poller = self._pollers.pop(key)
                poller.stop()

    def function(self, arn: str) -> LocalFunction | SandboxFunction:
        """The deployed function `arn` as this runner runs it (its execution environments
        are shared with anything else that invokes it, such as scheduled rules)."""
        if arn not in self._functions:
            config = FunctionConfig.from_api(
                self._clients["lambda"].get_function_configuration(FunctionName=arn)
            )
            metrics = None
            if self.log_dir is not None:
                metrics = EmfPublisher(self._clients["cloudwatch"]).publish
            self._functions[arn] = (
                SandboxFunction(config, self.region, log_dir=self.log_dir, on_log_lines=metrics)
                if self.function_processes
                else LocalFunction(config, log_dir=self.log_dir, on_log_lines=metrics)
            )
        return self._functions[arn]

    def _filters_accepted(self, settings: MappingSettings) -> bool:
        """Whether Lambda would have taken the mapping's filter patterns (said once if not)."""
        try:
            event_filter(settings.filter_patterns)
        except ValueError as exc:
            key = (settings.uuid, settings.filter_patterns)
            if key not in self._rejected_filters:
                self._rejected_filters.add(key)
                log.error("mapping %s is not acted on: %s", settings.uuid, exc)
            return False
        return True

    def _shards(self, settings: MappingSettings) -> list[tuple[str, ShardReader[Any]]]:
        # Readers hold no connection until used; those of existing pollers are kept.
        if settings.source == "dynamodb":
            return self._table_stream_shards(settings.stream_arn)
        return self._kinesis_shards(settings.stream_arn)

    def _kinesis_shards(self, stream_arn: str) -> list[tuple[str, ShardReader[Any]]]:
        stream = moto_stream(stream_arn) if self.record_source != "http" else None
        if stream is not None:
            shards = moto_internals.stream_shards(stream)
            return [(sid, BackendShardReader(shard)) for sid, shard in shards.items()]
        if self.record_source == "backend":
            raise RuntimeError(f"stream {stream_arn} is not in this process's emulator")
        kinesis = self._clients["kinesis"]
        shards = kinesis.list_shards(StreamARN=stream_arn)["Shards"]
        return [(s["ShardId"], HttpShardReader(kinesis, stream_arn, s["ShardId"])) for s in shards]

    def _table_stream_shards(self, stream_arn: str) -> list[tuple[str, ShardReader[Any]]]:
        shard = moto_stream_shard(stream_arn) if self.record_source != "http" else None
        if shard is not None:
            return [(moto_internals.stream_shard_id(shard), BackendStreamReader(shard))]
        if self.record_source == "backend":
            raise RuntimeError(f"stream {stream_arn} is not in this process's emulator")
        streams = self._clients["dynamodbstreams"]
        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        return [
            (
                s["ShardId"],
                HttpStreamReader(
                    streams,
                    stream_arn,
                    s["ShardId"],
                    int(s["SequenceNumberRange"]["StartingSequenceNumber"]),
                ),
            )
            for s in shards
        ]

    def send_on_failure(self, destination_arn: str, record: dict[str, Any]) -> None:
        """Deliver an invocation record to an SQS queue or SNS topic destination."""
        service, _region, account, resource = destination_arn.split(":")[2:6]
        body = json.dumps(record)
        if service == "sqs":
            sqs = self._clients["sqs"]
            url = sqs.get_queue_url(QueueName=resource, QueueOwnerAWSAccountId=account)
            sqs.send_message(QueueUrl=url["QueueUrl"], MessageBody=body)
        elif service == "sns":
            self._clients["sns"].publish(TopicArn=destination_arn, Message=body)
        else:
            log.warning("on-failure destination %s is not supported locally", destination_arn)
