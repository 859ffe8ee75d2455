"""Run the batch job in-process against the configured environment and summarise it.

`materialize()` is what the command line calls. With no arguments it catches up:
one run over every write window from where the lake stopped up to now (the
current hour's writes included), exactly what the hourly schedule does for
complete hours. A window or a range of windows can be run again by name, and a
rebuild starts from one full export of the table.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import dagster as dg

from pipeline_platform.defs import keys
from pipeline_platform.defs.jobs import BATCH_JOB, LAKE_TABLES, run_tags
from pipeline_platform.defs.lake.run_context import state_store
from pipeline_platform.defs.lake.windows import CatchUp, catch_up
from pipeline_platform.defs.partitions import WRITE_HOURS, hour_key, key_start
from platform_tools.dagster_home import dagster_home

if TYPE_CHECKING:
    from pipeline_platform.resources.warehouse import Warehouse

#: Where the summary finds what a run exported and which reading days it touched.
_EXPORT = keys.DYNAMODB_EXPORT.to_user_string()
_LAKE_TABLES = {
    keys.LAKE_READINGS.to_user_string(): "readings",
    keys.LAKE_QUARANTINE.to_user_string(): "quarantined records",
    keys.LAKE_RULE_ERRORS.to_user_string(): "rule errors",
}


class RunWatcher(Protocol):
    """Follows a run as it executes (the command line's display)."""

    def run_started(self, run_id: str, plan: CatchUp, rebuild: bool) -> None:
        """The run `run_id` over `plan`'s windows is about to start."""

    def event(self, entry: dg.EventLogEntry) -> None:
        """An event of the run, as Dagster stores it."""


class RunFailed(RuntimeError):
    """The batch run failed; the message names the failed steps."""


class InvalidWindow(ValueError):
    """A window or range given on the command line that is not one of the write windows."""


class RunInterrupted(RunFailed):
    """Ctrl-C or SIGTERM stopped the run (Dagster takes both signals while a run executes)."""


#: The error Dagster gives the steps it stopped on Ctrl-C or SIGTERM.
INTERRUPTED_ERROR = "DagsterExecutionInterruptedError"


def window_range(first: str, last: str | None = None) -> CatchUp:
    """The windows from partition `first` to `last` (default `first`), checked."""
    now = datetime.now(UTC)
    valid = WRITE_HOURS.get_partition_keys(now)
    last = last or first
    for key in (first, last):
        if key not in valid:
            raise InvalidWindow(
                f"{key!r} is not a write window: windows are hours from {valid[0]} to "
                f"{valid[-1]}, written YYYY-MM-DD-HH:00"
            )
    if key_start(last) < key_start(first):
        raise InvalidWindow(f"the range ends ({last}) before it starts ({first})")
    return CatchUp(first, last, None, now)


def catch_up_range(now: datetime | None = None) -> CatchUp:
    """The windows a catch-up runs now: from where the lake stopped, up to now."""
    from pipeline_platform.resources.by_environment import cloud_resource

    now = now or datetime.now(UTC)
    states = state_store(cloud_resource()).load_many(LAKE_TABLES)
    plan = catch_up(states, now, complete_only=False)
    if plan is None:  # the lake is ahead of this clock: take the current hour again
        return CatchUp(hour_key(now), hour_key(now), None, now)
    return plan


def _instance() -> dg.DagsterInstance:
    # The instance `ui` uses too (under the state dir unless DAGSTER_HOME says where), so
    # runs, windows processed and cursors outlive the process, as in a deployment. Where
    # the lake stopped is the lake's own record (its state in S3), not the instance's.
    home = dagster_home()
    return dg.DagsterInstance.from_config(str(home))


def _value(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def summarise(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> dict[str, Any]:
    """Per asset: rows (from `dagster/row_count`), counts and step duration; every check's
    outcome; the write windows exported and the reading days each lake table touched."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for logged in instance.all_logs(result.run_id):
        event = logged.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = logged.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[event.step_key] = logged.timestamp - started.get(
                event.step_key, logged.timestamp
            )
    assets: dict[str, dict[str, Any]] = defaultdict(dict)
    windows: dict[str, Any] = {}
    days: dict[str, list[str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        key = materialization.asset_key.to_user_string()
        if key in assets:  # one event per partition of the range: the first says it all
            continue
        metadata = {name: _value(v) for name, v in materialization.metadata.items()}
        entry = assets[key]
        entry["rows"] = metadata.get("dagster/row_count")
        entry["counts"] = {
            name: value
            for name, value in metadata.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        entry["seconds"] = round(seconds.get(event.step_key or "", 0.0), 3)
        if "seconds_by_phase" in metadata:
            entry["phases"] = metadata["seconds_by_phase"]
        if key == _EXPORT:
            windows = {
                "export_type": metadata.get("export_type"),
                "plan": metadata.get("plan"),
                "exported": metadata.get("windows", []),
                "items_exported": metadata.get("items_exported", 0),
                "billed_bytes": metadata.get("billed_bytes", 0),
            }
        if key in _LAKE_TABLES:
            days[_LAKE_TABLES[key]] = list(metadata.get("reading_days_touched", []))
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }
    return {
        "success": result.success,
        "windows": windows,
        "reading_days_touched": days,
        "assets": dict(assets),
        "checks": checks,
    }


def materialize(
    partition: str | None = None,
    last: str | None = None,
    rebuild: bool = False,
    log_level: str = "DEBUG",
    instance: dg.DagsterInstance | None = None,
    watcher: RunWatcher | None = None,
    warehouse: Warehouse | None = None,
) -> dict[str, Any]:
    """Run the batch ETL job in-process and return a summary.

    No arguments: catch up, from where the lake stopped to now. `partition`
    (and `last`): the write windows from `partition` to `last` again, whatever
    the lake holds. `rebuild`: start from one full export of the table (merged
    into the lake: rows the table no longer holds stay).

    The summary holds the partition range, the write windows exported, the
    reading days each lake table touched, per asset its rows and duration, and
    each asset check's outcome. A failed run raises `RunFailed`. The run is
    recorded in `instance`, by default the one `ui` shows (see `_instance`). It
    loads `warehouse`, by default the environment's. `watcher`, when given, is told the
    run is starting and then sees each of its events as Dagster stores it.
    """
    from pipeline_platform.definitions import build_definitions

    plan = window_range(partition, last) if partition else catch_up_range()
    job = build_definitions(warehouse).resolve_job_def(BATCH_JOB)
    instance = instance or _instance()
    run_id = str(uuid.uuid4())
    if watcher is not None:
        watcher.run_started(run_id, plan, rebuild)
        instance.add_event_listener(run_id, watcher.event)
    result = job.execute_in_process(
        run_id=run_id,
        instance=instance,
        tags=run_tags(plan, rebuild=rebuild),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    summary = {"partitions": [plan.first_key, plan.last_key], **summarise(result, instance)}
    if not result.success:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        errors = [
            str(error.message).strip()
            for e in failures
            if (error := getattr(e.event_specific_data, "error", None)) is not None
        ]
        failed = [e.step_key for e in failures]
        interrupted = any(
            getattr(getattr(e.event_specific_data, "error", None), "cls_name", None)
            == INTERRUPTED_ERROR
            for e in failures
        )
        kind = RunInterrupted if interrupted else RunFailed
        raise kind(f"batch run failed in {failed}: {' | '.join(errors)}")
    return summary


def describe(summary: dict[str, Any]) -> str:
    """The run in a few lines: the windows it processed, the reading days they touched."""
    first, last = summary["partitions"]
    windows = summary["windows"]
    lines = [
        f"write windows {first} .. {last}: {windows.get('plan') or 'nothing to export'}",
        f"  exported: {windows.get('items_exported', 0)} item(s), "
        f"{windows.get('billed_bytes', 0)} byte(s) ({windows.get('export_type')})",
    ]
    for frm, to in windows.get("exported", []):
        lines.append(f"    [{frm or 'table start'}, {to})")
    for table, days in summary["reading_days_touched"].items():
        shown = ", ".join(days) if len(days) <= 10 else f"{', '.join(days[:8])}, ... {days[-1]}"
        lines.append(f"  {table}: {len(days)} reading day(s) touched{': ' + shown if days else ''}")
    failed = sorted(name for name, passed in summary["checks"].items() if not passed)
    lines.append(
        f"  checks: {len(summary['checks']) - len(failed)} passed"
        + (f", FAILED: {', '.join(failed)}" if failed else "")
    )
    return "\n".join(lines)
