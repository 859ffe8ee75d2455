"""`pipeline-platform status`: where the platform stands, for whoever is on call.

One look at every stage, in the local cloud or (with `PLATFORM_ENV=aws`) in the
deployed stacks, each read the cheap way (metrics and small state objects, never a
scan of the table or the lake):

- stream: the event source mapping's state, and Lambda's `IteratorAge` (how far
  behind its stream the function is) against the stack's alarm threshold;
- table: when the stream processor last stored a reading, and how many in the last
  hour (its `stored` metric);
- lake: each table's watermark, and the write windows not yet processed;
- last run: the batch job's last run, its result and failed checks, from the Dagster
  instance when reachable;
- warehouse: its newest reading, the lake versions it has loaded, dbt's queue;
- alarms: the deployment's alarms in ALARM.

Something needs attention (exit status 1) when the mapping is not enabled or lags
past the threshold, the last run failed (or a check did), write windows have waited
more than two hours after ending, or an alarm is in ALARM. Without a run to go by
(no Dagster instance reachable), a warehouse behind the lake, or loads dbt has not
built, stand for a failed run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudformation.naming import STREAMING_STACK
from cloudformation.outputs import StreamingOutput
from cloudformation.streaming.alarms import ITERATOR_AGE_METRIC, LAMBDA_NAMESPACE
from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.jobs import LAKE_TABLES
from pipeline_platform.defs.lake.run_context import state_store
from pipeline_platform.defs.lake.state import LakeState
from pipeline_platform.defs.lake.windows import unprocessed_windows
from pipeline_platform.defs.partitions import WINDOW, hour_key
from pipeline_platform.environment import Environment, Settings, deployment_naming
from pipeline_platform.resources.by_environment import build_resources, cloud_resource
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.load_sql import LOADS, PENDING
from platform_tools.last_run import RunReport, Runs, instance_home, read_runs
from stream_processor import telemetry

#: A write window not processed this long after it ended needs attention: the hourly
#: schedule takes each window five minutes after it ends, so two missed ticks.
MISSING_WINDOW_GRACE = timedelta(hours=2)
#: How far back Lambda's IteratorAge is read: the latest minute with a batch in it.
ITERATOR_AGE_LOOKBACK = timedelta(minutes=5)
#: How far back the stream processor's writes are looked for (CloudWatch returns at most
#: 1,440 points: a day of minutes).
STORED_LOOKBACK = timedelta(hours=24)
_MINUTE = 60


@dataclass
class Section:
    """One stage of the report: the lines a person reads, what needs attention, the facts."""

    name: str
    lines: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Every stage's section, and when the report was made."""

    environment: str
    endpoint: str | None
    checked_at: datetime
    sections: list[Section]

    @property
    def attention(self) -> list[str]:
        """Everything that needs attention, stage by stage."""
        return [item for section in self.sections for item in section.attention]

    def as_dict(self) -> dict[str, Any]:
        """The report for `--json`."""
        return {
            "environment": self.environment,
            "endpoint": self.endpoint,
            "checked_at": self.checked_at.isoformat(),
            "healthy": not self.attention,
            "attention": self.attention,
            **{section.name.replace(" ", "_"): section.facts for section in self.sections},
        }


# --- formatting -------------------------------------------------------------------------


def _clock(moment: datetime, now: datetime) -> str:
    """`04:28 UTC` today, `2026-12-05 04:28 UTC` on another day."""
    moment = moment.astimezone(UTC)
    if moment.date() == now.date():
        return f"{moment:%H:%M:%S} UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _minute(moment: datetime, now: datetime) -> str:
    """A metric's minute, `in the minute of 04:28 UTC`: CloudWatch counts by the minute."""
    moment = _floor_minute(moment)
    day = "" if moment.date() == now.date() else f"{moment:%Y-%m-%d} "
    return f"in the minute of {day}{moment:%H:%M} UTC"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max((now - moment).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# --- stream -----------------------------------------------------------------------------


def stream_section(
    cloud: CloudResource, settings: Settings, now: datetime, max_lag: float | None
) -> Section:
    """The mapping's state and Lambda's iterator age, against the threshold."""
    section = Section("stream")
    mappings = [
        m
        for m in cloud.client("lambda").list_event_source_mappings(
            FunctionName=settings.function_name
        )["EventSourceMappings"]
        if m["EventSourceArn"].endswith(f"/{settings.stream_name}")
    ]
    threshold_source = "--max-lag"
    if max_lag is None:
        alarms = cloud.client("cloudwatch").describe_alarms_for_metric(
            MetricName=ITERATOR_AGE_METRIC,
            Namespace=LAMBDA_NAMESPACE,
            Dimensions=[{"Name": "FunctionName", "Value": settings.function_name}],
        )["MetricAlarms"]
        thresholds = [a["Threshold"] / 1000 for a in alarms if "Threshold" in a]
        max_lag = min(thresholds) if thresholds else None
        threshold_source = "the stack's IteratorAge alarm"
    age, measured = _iterator_age(cloud, settings.function_name, now)
    states = [m.get("State", "Unknown") for m in mappings]
    section.facts = {
        "stream": settings.stream_name,
        "function": settings.function_name,
        "mapping_states": states,
        "iterator_age_seconds": age,
        "iterator_age_at": _iso(measured),
        "max_lag_seconds": max_lag,
    }
    if not mappings:
        section.lines.append(f"no event source mapping from {settings.stream_name}")
        section.attention.append(
            f"no event source mapping reads {settings.stream_name}: no reading is processed"
        )
    for mapping in mappings:
        state = mapping.get("State", "Unknown")
        result = mapping.get("LastProcessingResult")
        section.lines.append(
            f"mapping {state}" + (f", last processing result: {result}" if result else "")
        )
        if state not in ("Enabled", "Enabling", "Updating"):
            section.attention.append(
                f"the event source mapping is {state}: readings wait in {settings.stream_name}"
            )
        if result and str(result).startswith("PROBLEM"):
            section.attention.append(f"the event source mapping reports {result}")
    limit = f" (limit {_seconds(max_lag)}, {threshold_source})" if max_lag is not None else ""
    if age is None or measured is None:
        minutes = ITERATOR_AGE_LOOKBACK.total_seconds() / 60
        section.lines.append(f"iterator age: no batch sent in the last {minutes:.0f} min{limit}")
    else:
        section.lines.append(f"iterator age {_seconds(age)} {_minute(measured, now)}{limit}")
        if max_lag is not None and age > max_lag:
            section.attention.append(
                f"the stream processor is {_seconds(age)} behind its stream (over "
                f"{_seconds(max_lag)})"
            )
    return section


def _iterator_age(
    cloud: CloudResource, function_name: str, now: datetime
) -> tuple[float | None, datetime | None]:
    """The maximum IteratorAge (s) of the latest minute with a batch, and that minute."""
    points = cloud.client("cloudwatch").get_metric_statistics(
        Namespace=LAMBDA_NAMESPACE,
        MetricName=ITERATOR_AGE_METRIC,
        Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=now - ITERATOR_AGE_LOOKBACK,
        EndTime=now + timedelta(minutes=1),
        Period=_MINUTE,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None, None
    latest = max(points, key=lambda p: p["Timestamp"])
    return latest["Maximum"] / 1000, latest["Timestamp"].astimezone(UTC)


# --- table ------------------------------------------------------------------------------


def table_section(cloud: CloudResource, settings: Settings, now: datetime) -> Section:
    """When the stream processor last stored a reading, and how many in the last hour."""
    section = Section("table")
    points = cloud.client("cloudwatch").get_metric_statistics(
        Namespace=telemetry.NAMESPACE,
        MetricName=telemetry.STORED_METRIC,
        Dimensions=[{"Name": "FunctionName", "Value": settings.function_name}],
        StartTime=now - STORED_LOOKBACK,
        EndTime=now + timedelta(minutes=1),
        Period=_MINUTE,
        Statistics=["Sum"],
    )["Datapoints"]
    written = [p for p in points if p["Sum"] > 0]
    last = max((p["Timestamp"].astimezone(UTC) for p in written), default=None)
    hour_ago = now - timedelta(hours=1)
    last_hour = int(sum(p["Sum"] for p in written if p["Timestamp"] >= hour_ago))
    items = cloud.client("dynamodb").describe_table(TableName=settings.table_name)["Table"]
    section.facts = {
        "table": settings.table_name,
        "last_stored_at": _iso(last),
        "stored_last_hour": last_hour,
        "item_count": items.get("ItemCount", 0),
    }
    if last is None:
        hours = STORED_LOOKBACK.total_seconds() / 3600
        section.lines.append(f"no reading stored in the last {hours:.0f} h")
    else:
        section.lines.append(
            f"last reading stored {_minute(last, now)} ({_ago(_floor_minute(last), now)}); "
            f"{_plural(last_hour, 'reading')} stored in the last hour"
        )
    section.lines.append(
        f"{settings.table_name}: about {_plural(int(items.get('ItemCount', 0)), 'item')}"
    )
    return section


# --- lake -------------------------------------------------------------------------------


def lake_section(
    states: dict[str, LakeState], item_count: int, now: datetime, grace: timedelta
) -> Section:
    """Each lake table's watermark, and the write windows not yet processed."""
    section = Section("lake")
    width = max(len(t) for t in states)
    overdue: set[datetime] = set()
    missing_all: set[datetime] = set()
    tables: dict[str, Any] = {}
    for table, state in states.items():
        missing = unprocessed_windows(state, now)
        missing_all.update(missing)
        overdue.update(m for m in missing if m + WINDOW + grace < now)
        rows = sum(d.rows for d in state.days.values())
        tables[table] = {
            "watermark": _iso(state.watermark),
            "rows": rows,
            "reading_days": len(state.days),
            "lake_version": state.version,
            "unprocessed_windows": [hour_key(m) for m in missing],
        }
        if state.watermark is None:
            section.lines.append(f"{table:<{width}}  never merged")
        else:
            section.lines.append(
                f"{table:<{width}}  up to {_clock(state.watermark, now)}; "
                f"{_plural(rows, 'row')} on {_plural(len(state.days), 'reading day')}"
            )
    section.facts = {"tables": tables}
    if missing_all:
        ordered = sorted(missing_all)
        span = hour_key(ordered[0]) + (f" .. {hour_key(ordered[-1])}" if len(ordered) > 1 else "")
        section.lines.append(
            f"write windows not processed: {span} ({_plural(len(ordered), 'window')})"
        )
    else:
        section.lines.append("write windows not processed: none")
    if overdue:
        oldest = min(overdue)
        section.attention.append(
            f"{_plural(len(overdue), 'write window')} not processed more than "
            f"{grace.total_seconds() / 3600:g} h after ending, the oldest {hour_key(oldest)}: "
            "run `pipeline-platform materialize` (or check the schedule)"
        )
    if all(s.watermark is None for s in states.values()) and item_count > 0:
        section.attention.append(
            f"the lake is empty while the table holds about {item_count:,} items: run "
            "`pipeline-platform materialize`"
        )
    return section


# --- last run ---------------------------------------------------------------------------


def run_section(environment: Environment, now: datetime) -> tuple[Section, Runs | None]:
    """The batch job's last run from the Dagster instance, when one is reachable."""
    section = Section("last run")
    home = instance_home(environment)
    if home is None:
        section.lines.append(
            "no Dagster instance to read (set DAGSTER_HOME to reach a deployment's); "
            "the lake and the warehouse below tell how far the last run got"
        )
        section.facts = {"source": None}
        return section, None
    try:
        runs = read_runs(home)
    except Exception as error:  # an instance we cannot open or reach: say so, go on
        section.lines.append(f"the Dagster instance at {home} could not be read: {error}")
        section.facts = {"source": str(home), "error": str(error)}
        return section, None
    section.facts = {
        "source": str(home),
        "last": _run_facts(runs.last),
        "running": _run_facts(runs.running),
    }
    if runs.running is not None:
        started = runs.running.started_at
        section.lines.append(
            f"run {runs.running.run_id[:8]} {runs.running.status}"
            + (f" since {_clock(started, now)}" if started else "")
        )
    if runs.last is None:
        section.lines.append("no batch run finished yet")
        return section, runs
    section.lines.extend(_run_lines(runs.last, now))
    if runs.last.status != "SUCCESS":
        where = ", ".join(runs.last.failed_steps) or "no step (before its steps ran)"
        section.attention.append(
            f"the last batch run ({runs.last.run_id[:8]}) ended {runs.last.status} in {where}"
        )
    if runs.last.failed_checks:
        section.attention.append(
            f"the last batch run's check(s) failed: {', '.join(runs.last.failed_checks)}"
        )
    return section, runs


def _run_facts(run: RunReport | None) -> dict[str, Any] | None:
    if run is None:
        return None
    facts = asdict(run)
    facts["started_at"] = _iso(run.started_at)
    facts["ended_at"] = _iso(run.ended_at)
    facts["log"] = str(_run_log(run.run_id) or "") or None
    return facts


def _run_log(run_id: str) -> Path | None:
    """The log `materialize` wrote for the run, if it ran here."""
    from platform_tools.run_progress import LOG_DIR

    found = sorted(LOG_DIR.glob(f"*-{run_id[:8]}.log"))
    return found[-1] if found else None


def _run_lines(run: RunReport, now: datetime) -> list[str]:
    took = (
        f", {_seconds((run.ended_at - run.started_at).total_seconds())}"
        if run.started_at and run.ended_at
        else ""
    )
    when = (
        f" {_clock(run.started_at, now)} ({_ago(run.started_at, now)}{took})"
        if run.started_at
        else ""
    )
    windows = f", windows {run.windows[0]} .. {run.windows[1]}" if run.windows else ""
    lines = [f"{run.status} run {run.run_id[:8]}{when}{windows}"]
    for step, error in run.failed_steps.items():
        lines.append(f"failed step: {step}: {error}")
    if run.failed_checks:
        lines.append(f"failed checks: {', '.join(run.failed_checks)}")
    if run.warnings:
        lines.append(f"warnings: {', '.join(run.warnings)}")
    if not run.failed_checks and run.status == "SUCCESS":
        lines.append("every check passed" if not run.warnings else "every other check passed")
    log = _run_log(run.run_id)
    if log is not None:
        lines.append(f"log: {log}")
    return lines


# --- warehouse --------------------------------------------------------------------------


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be read now (not there yet, or busy)."""


def _warehouse_rows(environment: Environment, settings: Settings) -> dict[str, list[tuple]]:
    """The warehouse's freshness and bookkeeping, one query each."""
    if environment is Environment.LOCAL and not Path(settings.warehouse_path).exists():
        raise WarehouseUnavailable(f"no warehouse yet at {settings.warehouse_path}")
    warehouse = build_resources(environment)["warehouse"]
    if environment is Environment.AWS and settings.redshift is None:
        raise WarehouseUnavailable(
            "the analytics stack was deployed without a warehouse (DeployWarehouse=false)"
        )
    try:
        present = {
            f"{schema}.{table}"
            for schema, table in warehouse.query(
                "select table_schema, table_name from information_schema.tables "
                f"where table_schema in ('{ws.RAW_SCHEMA}', '{ws.STATE_SCHEMA}')"
            )
        }
        readings = f"{ws.RAW_SCHEMA}.{ws.READINGS_TABLE}"
        found: dict[str, list[tuple]] = {"readings": [], "loads": [], "pending": []}
        if readings in present:
            found["readings"] = warehouse.query(
                f"select max(ingested_at), max(reading_at), count(*) from {readings}"
            )
        if LOADS in present:
            found["loads"] = warehouse.query(
                f"select lake_table, lake_id, max(lake_version), max(loaded_at) from {LOADS} "
                "group by lake_table, lake_id"
            )
        if PENDING in present:
            found["pending"] = warehouse.query(
                f"select count(distinct reading_hour), count(distinct reading_date), "
                f"count(case when full_refresh then 1 end) from {PENDING}"
            )
    except Exception as error:
        if "lock" in str(error).lower():  # DuckDB: a run holds the file to write to it
            raise WarehouseUnavailable(
                "the warehouse is busy (a run is writing to it); run status again shortly"
            ) from error
        raise
    return found


def _utc(value: Any) -> datetime | None:
    # The warehouse keeps UTC timestamps without a zone.
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def warehouse_section(
    environment: Environment,
    settings: Settings,
    states: dict[str, LakeState],
    now: datetime,
    judge: bool,
) -> Section:
    """The warehouse's newest reading, the lake versions it loaded and dbt's queue.

    With `judge` (no run to go by: no Dagster instance reachable, none finished or in
    progress), a warehouse behind the lake, or loads dbt has not built, need attention:
    they are what a failed run leaves.
    """
    section = Section("warehouse")
    try:
        found = _warehouse_rows(environment, settings)
    except WarehouseUnavailable as error:
        section.lines.append(str(error))
        section.facts = {"available": False, "reason": str(error)}
        return section
    newest_ingested = newest_reading = None
    rows = 0
    if found["readings"]:
        newest_ingested, newest_reading, count = found["readings"][0]
        rows = int(count or 0)
    ingested, reading = _utc(newest_ingested), _utc(newest_reading)
    loaded: dict[str, tuple[int, datetime | None]] = {}
    for table, lake_id, version, loaded_at in found["loads"]:
        if table in states and lake_id == states[table].lake_id:
            loaded[table] = (int(version), _utc(loaded_at))
    hours = days = refresh = 0
    if found["pending"]:
        hours, days, refresh = (int(n or 0) for n in found["pending"][0])
    readings = f"{ws.RAW_SCHEMA}.{ws.READINGS_TABLE}"
    if ingested is None:
        section.lines.append(f"{readings}: no reading loaded yet")
    else:
        section.lines.append(
            f"newest reading stored {_clock(ingested, now)} ({_ago(ingested, now)}), "
            f"reading time {_clock(reading, now) if reading else 'unknown'}; "
            f"{_plural(rows, 'row')} in {readings}"
        )
    behind = []
    parts = []
    for table, state in states.items():
        version, at = loaded.get(table, (0, None))
        parts.append(
            f"{table} {version} of {state.version}"
            + (f" ({_clock(at, now)})" if at is not None else "")
        )
        if version < state.version:
            behind.append(table)
    section.lines.append(f"lake versions loaded: {', '.join(parts)}")
    if hours or days or refresh:
        section.lines.append(
            f"dbt: {_plural(hours, 'reading hour')} over {_plural(days, 'day')} queued since "
            "its last successful build" + (" (a full refresh)" if refresh else "")
        )
    else:
        section.lines.append("dbt: nothing queued; the marts hold every load")
    section.facts = {
        "available": True,
        "newest_ingested_at": _iso(ingested),
        "newest_reading_at": _iso(reading),
        "readings_rows": rows,
        "lake_versions_loaded": {t: v for t, (v, _) in loaded.items()},
        "dbt_queued_hours": hours,
        "dbt_queued_days": days,
    }
    if judge:
        if behind:
            section.attention.append(
                f"the warehouse has not loaded the lake's latest changes of {', '.join(behind)}: "
                "the last run stopped before its load"
            )
        if hours or days or refresh:
            section.attention.append(
                "dbt has loads to rebuild that no build has taken: the last dbt build failed "
                "or did not run"
            )
    return section


# --- alarms -----------------------------------------------------------------------------


def alarm_section(cloud: CloudResource, settings: Settings, now: datetime) -> Section:
    """The deployment's alarms in ALARM: those that notify its alarm topic."""
    section = Section("alarms")
    stack = cloud.client("cloudformation").describe_stacks(
        StackName=deployment_naming().stack(STREAMING_STACK)
    )["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    topic = outputs.get(StreamingOutput.ALARM_TOPIC_ARN)
    paginator = cloud.client("cloudwatch").get_paginator("describe_alarms")
    firing = [
        alarm
        for page in paginator.paginate(StateValue="ALARM")
        for alarm in page["MetricAlarms"]
        if topic in alarm.get("AlarmActions", [])
    ]
    section.facts = {
        "topic": topic,
        "in_alarm": [
            {
                "name": a["AlarmName"],
                "description": a.get("AlarmDescription"),
                "reason": a.get("StateReason"),
                "since": _iso(a.get("StateUpdatedTimestamp")),
            }
            for a in firing
        ],
    }
    if not firing:
        section.lines.append("none in ALARM")
    for alarm in firing:
        since = alarm.get("StateUpdatedTimestamp")
        section.lines.append(
            f"{alarm['AlarmName']} in ALARM"
            + (f" since {_clock(since, now)}" if since else "")
            + f": {alarm.get('AlarmDescription') or alarm.get('StateReason', '')}"
        )
        section.attention.append(f"alarm {alarm['AlarmName']} is in ALARM")
    return section


# --- the report -------------------------------------------------------------------------


def _unreadable(name: str, error: Exception) -> Section:
    """A stage that could not be read: said, and counted as needing attention."""
    said = f"{type(error).__name__}: {error}"
    return Section(
        name,
        lines=[f"could not be read: {said}"],
        attention=[f"the {name} could not be read: {said}"],
        facts={"error": said},
    )


def gather(
    environment: Environment,
    max_lag: float | None = None,
    grace: timedelta = MISSING_WINDOW_GRACE,
    now: datetime | None = None,
) -> Report:
    """Read every stage of the deployment `environment` names; see the module docstring.

    Raises `SettingMissing` when the deployment cannot be found at all (the local cloud
    not running, the stacks not deployed); a stage that cannot be read is reported as
    such, and the others still are.
    """
    now = now or datetime.now(UTC)
    cloud = cloud_resource()
    settings = cloud.settings
    # Each stage on its own: one that fails to answer (a permission missing, the warehouse
    # unreachable) must not hide what the others say.
    try:
        stream = stream_section(cloud, settings, now, max_lag)
    except Exception as error:
        stream = _unreadable("stream", error)
    try:
        table = table_section(cloud, settings, now)
    except Exception as error:
        table = _unreadable("table", error)
    states: dict[str, LakeState] = {}
    try:
        states = state_store(cloud).load_many(LAKE_TABLES)
        lake = lake_section(states, int(table.facts.get("item_count") or 0), now, grace)
    except Exception as error:
        lake = _unreadable("lake", error)
    run, runs = run_section(environment, now)
    judge = runs is None or (runs.last is None and runs.running is None)
    try:
        warehouse = warehouse_section(environment, settings, states, now, judge)
    except Exception as error:
        warehouse = _unreadable("warehouse", error)
    try:
        alarms = alarm_section(cloud, settings, now)
    except Exception as error:
        alarms = _unreadable("alarms", error)
    return Report(
        environment.value,
        settings.endpoint_url,
        now,
        [stream, table, lake, run, warehouse, alarms],
    )


def render(report: Report) -> str:
    """The report as a person reads it."""
    where = f" ({report.endpoint})" if report.endpoint else ""
    lines = [
        f"pipeline-platform status: {report.environment}{where}, "
        f"{report.checked_at:%Y-%m-%d %H:%M:%S} UTC",
        "",
    ]
    width = max(len(s.name) for s in report.sections)
    for section in report.sections:
        for i, line in enumerate(section.lines):
            lines.append(f"{section.name if i == 0 else '':<{width}}  {line}")
    lines.append("")
    if report.attention:
        lines.append("NEEDS ATTENTION")
        lines.extend(f"  - {item}" for item in report.attention)
    else:
        lines.append("OK: nothing needs attention")
    return "\n".join(lines)
