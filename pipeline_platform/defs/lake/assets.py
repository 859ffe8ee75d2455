"""Lake assets: each write window's changes, merged into the lake by reading day.

Every asset here is partitioned by write hour (`partitions.WRITE_HOURS`). A run
takes what was written in its windows: the table's changes through incremental
exports (one full export on an empty lake or for a rebuild), and the quarantine
bucket's new objects by `LastModified`. Each lake table then merges them into
the `dt=YYYY-MM-DD` partitions of the reading days they fall on (`merge`), and
records what it holds (`state`).

Two run tags steer a run (`run_context`; the command line and the schedule set
them, the UI can too): `iot/rebuild=true` starts from one full export, and
`iot/catch_up_since=<ISO time>` says where the lake stopped, so a catch-up does
not export its first hour's already merged part again.
"""

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from botocore.exceptions import ClientError

from pipeline_platform import progress
from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake import export, merge, shaping
from pipeline_platform.defs.lake.run_context import (
    REBUILD_TAG,
    SINCE_TAG,
    change_set_key,
    state_store,
)
from pipeline_platform.defs.lake.state import LakeState
from pipeline_platform.defs.lake.windows import (
    FULL_EXPORT,
    PlannedExport,
    WritesTooOld,
    object_span,
    plan_exports,
)
from pipeline_platform.defs.partitions import SINGLE_RUN, WRITE_HOURS, run_span
from pipeline_platform.defs.table_metadata import COLUMN_SCHEMA, column_schema, definition_metadata
from pipeline_platform.resources.cloud import CloudResource

GROUP = "lake"
EXPORT_CHECK = "export_changes_reach_lake"
OBJECTS_CHECK = "objects_reach_lake"
# A clock a little ahead of AWS's must not ask for a window ending in the future.
_CLOCK_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class RunOptions:
    """What the run's tags ask for."""

    rebuild: bool
    since: datetime | None


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that prints no progress bar (a step's output is for its logs)."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    return con


def run_options(context: dg.AssetExecutionContext) -> RunOptions:
    """The run's `iot/rebuild` and `iot/catch_up_since` tags."""
    tags = context.run.tags
    since = tags.get(SINCE_TAG)
    return RunOptions(
        rebuild=tags.get(REBUILD_TAG, "").lower() == "true",
        since=datetime.fromisoformat(since).astimezone(UTC) if since else None,
    )


def summary_key(context: dg.AssetExecutionContext) -> str:
    """Where the export asset says what it exported for the run's partitions."""
    span = context.partition_key_range
    return f"{keys.EXPORT_SUMMARY_PREFIX}{span.start}_{span.end}.json".replace(":", "")


def _span_start(context: dg.AssetExecutionContext, start: datetime) -> datetime:
    since = run_options(context).since
    return max(start, since) if since else start


def _now() -> datetime:
    return datetime.now(UTC) - _CLOCK_MARGIN


@dg.asset(
    key=keys.DYNAMODB_EXPORT,
    deps=[keys.DYNAMODB_TABLE],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    kinds={"dynamodb", "s3"},
    group_name=GROUP,
)
def dynamodb_export(
    context: dg.AssetExecutionContext, cloud: CloudResource
) -> dg.MaterializeResult:
    """The table's writes in the run's windows, exported to S3 (gzipped DynamoDB JSON).

    Incremental exports (`NEW_AND_OLD_IMAGES`) within AWS's limits: one per 24
    hours of the span, widened backwards to 15 minutes when shorter. On an empty
    lake, or for a rebuild, one full export. Windows the lake's full export
    already holds export nothing. Each export has a folder of its own named after
    its window; exporting a window again replaces that folder.
    """
    start, end = run_span(context)
    options = run_options(context)
    baseline = state_store(cloud).load(ws.READINGS_TABLE)[0].baseline
    dynamodb = cloud.client("dynamodb")
    bucket = cloud.settings.lake_bucket
    table = cloud.settings.table_name
    now = _now()
    try:
        plan = plan_exports(
            _span_start(context, start),
            end,
            now,
            baseline,
            options.rebuild,
            earliest=_earliest_restorable(dynamodb, table),
        )
    except WritesTooOld as error:
        raise export.ExportFailed(str(error)) from error
    context.log.info(plan.reason)
    arns = []
    if plan.exports:
        table_arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
        for planned in plan.exports:
            prefix = f"{keys.EXPORT_PREFIX}{planned.name}/"
            if cloud.delete_prefix(bucket, prefix):
                context.log.info(f"replacing the earlier export of {planned.name}")
            request = export.export_request(planned, table_arn, bucket, prefix, now)
            arns.append(_start_export(dynamodb, request, planned, table))
    descriptions = export.wait_for_exports(dynamodb, arns, context.log.info)
    s3 = cloud.client("s3")
    exports = []
    for planned, description in zip(plan.exports, descriptions, strict=True):
        prefix = f"{keys.EXPORT_PREFIX}{planned.name}/"
        data_keys = export.data_file_keys(s3, bucket, cloud.list_keys(bucket, prefix), description)
        exports.append(
            {
                "name": planned.name,
                "export_type": planned.export_type,
                "from": planned.start.isoformat() if planned.start else None,
                "to": export.exported_until(description, planned).isoformat(),
                "export_arn": description["ExportArn"],
                "data_keys": data_keys,
                "item_count": int(description.get("ItemCount", 0)),
                "billed_bytes": int(description.get("BilledSizeBytes", 0)),
            }
        )
    cloud.put_json(bucket, summary_key(context), {"reason": plan.reason, "exports": exports})
    kinds = sorted({e["export_type"] for e in exports}) or ["none"]
    return dg.MaterializeResult(
        metadata={
            "export_type": ", ".join(kinds),
            "plan": plan.reason,
            "exports": len(exports),
            "windows": dg.MetadataValue.json([[e["from"], e["to"]] for e in exports]),
            "items_exported": sum(e["item_count"] for e in exports),
            "billed_bytes": sum(e["billed_bytes"] for e in exports),
            "data_files": sum(len(e["data_keys"]) for e in exports),
            "s3_prefix": f"s3://{bucket}/{keys.EXPORT_PREFIX}",
        }
    )


def _earliest_restorable(dynamodb: Any, table: str) -> datetime | None:
    """How far back the table's point-in-time recovery reaches (None with PITR off)."""
    described = dynamodb.describe_continuous_backups(TableName=table)
    recovery = described["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    earliest = recovery.get("EarliestRestorableDateTime")
    return earliest.astimezone(UTC) if isinstance(earliest, datetime) else None


def _start_export(
    dynamodb: Any, request: dict[str, Any], planned: PlannedExport, table: str
) -> str:
    """Request one export; AWS's refusals become errors that say what to do."""
    try:
        return dynamodb.export_table_to_point_in_time(**request)["ExportDescription"]["ExportArn"]
    except dynamodb.exceptions.PointInTimeRecoveryUnavailableException as error:
        raise export.ExportFailed(
            f"table {table} has point-in-time recovery disabled; exports need it (the "
            "streaming stack enables it; locally the local cloud does)"
        ) from error
    except ClientError as error:
        if error.response["Error"]["Code"] != "InvalidExportTimeException":
            raise
        window = planned.name if planned.start else f"as of {planned.end.isoformat()}"
        raise export.ExportFailed(
            f"AWS refused the export of {window}: {error.response['Error']['Message']}. "
            "Exports reach back only as far as the table's point-in-time recovery (35 days at "
            "most, and not before it was enabled); writes older than that can only come from "
            "a full export: `pipeline-platform materialize --rebuild`"
        ) from error


def _check(name: str, asset: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description)


@dataclass(frozen=True)
class TableTotals:
    """What a lake table holds after a merge: its rows and its reading days."""

    schema: ws.Table
    rows: int
    days: int


@dataclass(frozen=True)
class Published:
    """A merge written to the lake."""

    merged: merge.MergeResult
    version: int
    written_keys: list[str]
    #: Rows of the rewritten days, read back from the files written.
    lake_rows: int
    table: TableTotals
    seconds: dict[str, float]


def _files_read(phase: str, total: int) -> Callable[[int], None]:
    """A download's per-file callback that reports `phase` progress."""
    return lambda done: progress.report(phase, done, total, "files")


def publish(
    context: dg.AssetExecutionContext,
    cloud: CloudResource,
    table: ws.Table,
    shape: Callable[[duckdb.DuckDBPyConnection, Path], Any],
    cover: Callable[[LakeState], None],
) -> tuple[Published, Any]:
    """Merge what `shape` reads into lake table `table`, under the table's lock.

    `shape(con, tmp)` fills the connection's `incoming` table and returns what it
    read; `cover(state)` records the write time the run took. Only the days that
    changed are uploaded (each replacing the day's files), with the change set,
    and the state last: a run that fails before it leaves the lake as it was.
    """
    store = state_store(cloud)
    bucket = cloud.settings.lake_bucket
    prefix = keys.LAKE_PREFIXES[table.name]
    with (
        store.lock(table.name, owner=f"run {context.run.run_id}"),
        tempfile.TemporaryDirectory(prefix=f"lake-{table.name}-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        state, etag = store.load(table.name)
        clock = _Clock()
        con = _connect()
        try:
            read = shape(con, tmp)
            clock.lap("read")
            days = merge.incoming_days(con)
            existing = [
                k
                for k in cloud.partition_keys(bucket, prefix, map(_day, days))
                if k.endswith(".parquet")
            ]
            local = cloud.download(
                bucket,
                existing,
                tmp / "existing",
                strip=prefix,
                on_fetched=_files_read("reading the lake's days", len(existing)),
            )
            clock.lap("lake_days_downloaded")
            progress.report("merging by key")
            merged = merge.merge(
                con,
                table,
                [str(p) for p in local],
                tmp / "merged",
                tmp / "changes.parquet",
                state.extras,
            )
            clock.lap("merge")
        finally:
            con.close()
        written: list[str] = []
        version = state.version
        lake_rows = 0
        if merged.rows_by_day:
            for done, day in enumerate(merged.days, start=1):
                folder = f"dt={day}/"
                fresh = cloud.upload_tree(tmp / "merged" / folder, bucket, prefix + folder)
                stale = [k for k in existing if k.startswith(prefix + folder) and k not in fresh]
                cloud.delete_keys(bucket, stale)
                written += fresh
                progress.report("writing reading days", done, len(merged.days), "days")
            lake_rows = _verified_rows(cloud, bucket, prefix, tmp / "merged", merged.days)
            version = state.apply(merged.rows_by_day, merged.changes_by_day)
            cloud.client("s3").upload_file(
                str(tmp / "changes.parquet"), bucket, change_set_key(table.name, version)
            )
        state.extras = merged.extras
        cover(state)
        store.save(state, etag)
        clock.lap("days_uploaded")
    context.log.info(
        f"{table.name}: {merged.applied} change(s) over {len(merged.days)} reading day(s) "
        f"{_days_text(merged.days)}; {merged.superseded} version(s) older than the lake's"
    )
    totals = TableTotals(table, sum(d.rows for d in state.days.values()), len(state.days))
    return Published(merged, version, written, lake_rows, totals, clock.laps), read


class _Clock:
    """Seconds spent in each phase of a step, for its metadata."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = round(now - self._last, 3)
        self._last = now


def _verified_rows(
    cloud: CloudResource, bucket: str, prefix: str, local: Path, days: tuple[str, ...]
) -> int:
    """Rows of the days just written, if the bucket holds exactly the files written (same
    keys and sizes); else -1, which fails the asset's check."""
    import pyarrow.parquet as pq

    rows = 0
    for day in days:
        folder = f"dt={day}/"
        files = {p.name: p for p in (local / folder).glob("*.parquet")}
        stored = {
            o.key.removeprefix(prefix + folder): o.size
            for o in cloud.list_objects(bucket, prefix + folder)
        }
        if stored != {name: p.stat().st_size for name, p in files.items()}:
            return -1
        rows += sum(pq.read_metadata(p).num_rows for p in files.values())
    return rows


def _day(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def _days_text(days: tuple[str, ...]) -> str:
    if len(days) <= 6:
        return ", ".join(days)
    return f"{', '.join(days[:3])} ... {', '.join(days[-2:])}"


def _merge_metadata(published: Published) -> dict[str, Any]:
    merged = published.merged
    return {
        "dagster/row_count": published.table.rows,
        COLUMN_SCHEMA: column_schema(published.table.schema, merged.extras),
        "reading_days": published.table.days,
        "changes_applied": merged.applied,
        "new_keys": merged.new_keys,
        "older_versions_kept_out": merged.superseded,
        "reading_days_touched": dg.MetadataValue.json(list(merged.days)),
        "changes_by_day": dg.MetadataValue.json(merged.changes_by_day),
        "rows_by_day": dg.MetadataValue.json(merged.rows_by_day),
        "lake_version": published.version,
        "files": len(published.written_keys),
        "seconds_by_phase": dg.MetadataValue.json(published.seconds),
    }


@dg.asset(
    key=keys.LAKE_READINGS,
    metadata=definition_metadata(ws.READINGS),
    deps=[keys.DYNAMODB_EXPORT],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    kinds={"s3", "parquet", "duckdb"},
    group_name=GROUP,
    check_specs=[
        _check(
            EXPORT_CHECK,
            keys.LAKE_READINGS,
            "Every exported change is read and accounted for: applied to the lake, or older "
            "than (or the same as) the lake's version; the rewritten days hold the rows the "
            "merge says.",
        )
    ],
)
def lake_sensor_readings(context: dg.AssetExecutionContext, cloud: CloudResource):
    """Readings as Parquet under `lake/sensor_readings/dt=YYYY-MM-DD/`, by reading day (UTC).

    The window's changes are merged into the days they fall on, whatever the day
    (2001, last year, three days ago): the latest write of each (device_id,
    reading_epoch) wins. Deletes in the table (TTL expiry, a manual delete) are
    counted and keep the lake's rows. Columns are `warehouse_schema.READINGS_COLUMNS`
    plus every extra payload field (such as `pressure`).
    """
    bucket = cloud.settings.lake_bucket
    try:
        summary = cloud.get_json(bucket, summary_key(context))
    except ClientError as error:
        raise FileNotFoundError(
            f"no export summary at s3://{bucket}/{summary_key(context)}: materialise "
            f"{keys.DYNAMODB_EXPORT.to_user_string()} for the same partitions first"
        ) from error
    exports = summary["exports"]

    def shape(con: duckdb.DuckDBPyConnection, tmp: Path) -> shaping.ExportRead:
        full = [e for e in exports if e["export_type"] == FULL_EXPORT]
        keys_ = [k for e in exports for k in e["data_keys"]]
        fetched = _files_read("reading the export", len(keys_))
        files = [str(p) for p in cloud.download(bucket, keys_, tmp / "export", on_fetched=fetched)]
        export_time = datetime.fromisoformat(full[0]["to"]) if full else None
        if not files:
            _empty_incoming(con, ws.READINGS)
            return shaping.ExportRead(0, 0, 0, 0, {}, ())
        return shaping.read_export(con, files, export_time)

    def cover(state: LakeState) -> None:
        for e in exports:
            until = datetime.fromisoformat(e["to"])
            if e["export_type"] == FULL_EXPORT:
                state.baseline = until
                state.cover(None, until)
            else:
                state.cover(datetime.fromisoformat(e["from"]), until)

    published, read = publish(context, cloud, ws.READINGS, shape, cover)
    # The exports are transport: once their changes are merged (and the state saved) they
    # are deleted, so exports of every hour do not pile up beside the lake.
    for e in exports:
        cloud.delete_prefix(bucket, f"{keys.EXPORT_PREFIX}{e['name']}/")
    exported = sum(e["item_count"] for e in exports)
    if read.skipped_fields:
        context.log.warning(f"fields not portable as column names, left out: {read.skipped_fields}")
    merged = published.merged
    yield dg.MaterializeResult(
        metadata={
            **_merge_metadata(published),
            "changes_exported": exported,
            "table_deletes": read.deletes,
            "extra_columns": dg.MetadataValue.json(read.extra_columns),
        }
    )
    yield dg.AssetCheckResult(
        check_name=EXPORT_CHECK,
        passed=bool(
            read.lines == exported
            and read.upserts + read.deletes == read.lines
            and published.lake_rows == sum(merged.rows_by_day.values())
        ),
        metadata={
            "changes_exported": exported,
            "lines_read": read.lines,
            "upserts": read.upserts,
            "deletes_kept_in_lake": read.deletes,
            "unreadable_lines": read.unreadable,
            "applied": merged.applied,
            "older_or_same_as_lake": merged.superseded,
            "duplicate_versions_in_run": read.upserts - merged.incoming,
            "rows_in_rewritten_days": published.lake_rows,
        },
    )


def _empty_incoming(con: duckdb.DuckDBPyConnection, table: ws.Table) -> None:
    """An empty `incoming` table with `table`'s columns: a run that read nothing."""
    body = ", ".join(f'"{c.name}" {c.sql_type("duckdb")}' for c in table.columns)
    con.execute(f"create or replace temp table incoming ({body})")


def _objects_asset(
    context: dg.AssetExecutionContext,
    cloud: CloudResource,
    table: ws.Table,
    bucket: str,
    prefix: str,
    suffix: str,
    read: Callable[[duckdb.DuckDBPyConnection, dict[str, tuple[str, datetime]]], int],
    one_record_per_object: bool,
):
    """Merge a bucket's objects written in the run's windows into lake table `table`."""
    start, end = run_span(context)
    options = run_options(context)
    now = _now()
    taken: dict[str, Any] = {}

    def shape(con: duckdb.DuckDBPyConnection, tmp: Path) -> int:
        state = state_store(cloud).load(table.name)[0]
        span = object_span(_span_start(context, start), end, now, state.baseline, options.rebuild)
        taken["span"] = span
        objects = []
        if span is not None:
            low, high = span
            objects = [
                o
                for o in cloud.list_objects(bucket, prefix)
                if o.key.endswith(suffix)
                and (low is None or o.last_modified >= low)
                and o.last_modified < high
            ]
        taken["objects"] = len(objects)
        paths = cloud.download(
            bucket,
            [o.key for o in objects],
            tmp / "objects",
            on_fetched=_files_read("reading new objects", len(objects)),
        )
        if not paths:
            _empty_incoming(con, table)
            return 0
        return read(
            con,
            {str(p): (o.key, o.last_modified) for p, o in zip(paths, objects, strict=True)},
        )

    def cover(state: LakeState) -> None:
        span = taken["span"]
        if span is None:
            return
        low, high = span
        if low is None:
            state.baseline = high
        state.cover(low, high)

    published, records = publish(context, cloud, table, shape, cover)
    merged = published.merged
    yield dg.MaterializeResult(
        metadata={
            **_merge_metadata(published),
            "objects_read": taken["objects"],
            "records_read": records,
        }
    )
    yield dg.AssetCheckResult(
        check_name=OBJECTS_CHECK,
        passed=bool(
            (records == taken["objects"] or not one_record_per_object)
            and published.lake_rows == sum(merged.rows_by_day.values())
        ),
        metadata={
            "objects_read": taken["objects"],
            "records_read": records,
            "applied": merged.applied,
            "older_or_same_as_lake": merged.superseded,
            "rows_in_rewritten_days": published.lake_rows,
        },
    )


_OBJECTS_CHECK_TEXT = (
    "Every object written in the run's windows is read (one record per rule error), and "
    "the rewritten days hold the rows the merge says."
)


@dg.asset(
    key=keys.LAKE_QUARANTINE,
    metadata=definition_metadata(ws.QUARANTINE),
    deps=[keys.S3_QUARANTINE],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    kinds={"s3", "parquet", "duckdb"},
    group_name=GROUP,
    check_specs=[_check(OBJECTS_CHECK, keys.LAKE_QUARANTINE, _OBJECTS_CHECK_TEXT)],
)
def lake_quarantined_records(context: dg.AssetExecutionContext, cloud: CloudResource):
    """Quarantined records as Parquet in `lake/quarantined_records/dt=YYYY-MM-DD/` (arrival day).

    Read from the quarantine bucket's `<quarantine prefix>dt=YYYY-MM-DD/*.jsonl`
    objects written in the run's windows (the prefix is the streaming stack's
    `QuarantinePrefix`, `quarantine/` by default), merged by Kinesis sequence
    number: a record quarantined again keeps its latest quarantine.
    """
    yield from _objects_asset(
        context,
        cloud,
        ws.QUARANTINE,
        cloud.settings.quarantine_bucket,
        cloud.settings.quarantine_prefix,
        ".jsonl",
        lambda con, objects: shaping.read_quarantine(con, list(objects)),
        one_record_per_object=False,
    )


@dg.asset(
    key=keys.LAKE_RULE_ERRORS,
    metadata=definition_metadata(ws.RULE_ERRORS),
    deps=[keys.S3_RULE_ERRORS],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    kinds={"s3", "parquet", "duckdb"},
    group_name=GROUP,
    check_specs=[_check(OBJECTS_CHECK, keys.LAKE_RULE_ERRORS, _OBJECTS_CHECK_TEXT)],
)
def lake_rule_errors(context: dg.AssetExecutionContext, cloud: CloudResource):
    """The topic rule's error records as Parquet in `lake/rule_errors/dt=YYYY-MM-DD/`.

    Messages the rule could not route (not JSON, no `device_id`) never reach the
    stream processor; the rule's error action keeps each under the quarantine
    bucket's `errors/` with its original payload, topic, client id and failure.
    They are data: merged here by object key, with the reason code
    `TOPIC_RULE_ERROR`, and loaded beside the function's quarantine.
    """
    yield from _objects_asset(
        context,
        cloud,
        ws.RULE_ERRORS,
        cloud.settings.quarantine_bucket,
        cloud.settings.rule_errors_prefix,
        ".json",
        shaping.read_rule_errors,
        one_record_per_object=True,
    )
