"""Run the batch job in-process against the configured environment and summarise it.

`materialize()` is what the command line calls: one partition (today by
default), a range of them, or every partition so far, in a single run.
"""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipeline_platform.defs.jobs import BATCH_JOB
from pipeline_platform.defs.partitions import DAILY
from platform_tools.dagster_home import dagster_home


class RunFailed(RuntimeError):
    """The batch run failed; the message names the failed steps."""


def partition_range(
    partition: str | None, all_partitions: bool, last: str | None = None
) -> tuple[str, str]:
    """First and last partition key to run: one day (today if none given), the days from
    `partition` to `last`, or all of them."""
    keys = DAILY.get_partition_keys(datetime.now(UTC))
    if all_partitions:
        return keys[0], keys[-1]
    first = partition or datetime.now(UTC).date().isoformat()
    last = last or first
    for key in (first, last):
        if key not in keys:
            raise ValueError(f"partition {key!r} is not a day from {keys[0]} to {keys[-1]}")
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return first, last


def _instance() -> dg.DagsterInstance:
    # The instance `ui` uses too (under the state dir unless DAGSTER_HOME says where), so
    # runs, windows processed and cursors outlive the process, as in a deployment.
    home = dagster_home()
    return dg.DagsterInstance.from_config(str(home))


def summarise(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> dict[str, Any]:
    """Per asset: rows (from `dagster/row_count`) and step duration; every check's outcome."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[event.step_key] = entry.timestamp - started.get(event.step_key, entry.timestamp)
    assets: dict[str, dict[str, Any]] = defaultdict(dict)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        entry = assets[materialization.asset_key.to_user_string()]
        rows = materialization.metadata.get("dagster/row_count")
        entry["rows"] = rows.value if rows is not None else None
        entry["counts"] = {
            name: value.value
            for name, value in materialization.metadata.items()
            if isinstance(value.value, int) and not isinstance(value.value, bool)
        }
        entry["seconds"] = round(seconds.get(event.step_key, 0.0), 3)
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }
    return {"success": result.success, "assets": dict(assets), "checks": checks}


def materialize(
    partition: str | None = None,
    all_partitions: bool = False,
    log_level: str = "DEBUG",
    last: str | None = None,
) -> dict[str, Any]:
    """Run the batch ETL job in-process for one day (default today), the days from `partition`
    to `last`, or every day; return a summary.

    Every day of the range costs Dagster an event per asset even when it holds no
    reading, so a range over years is slow to record; run the days that have data.

    The summary holds the partition range, per asset its rows and duration in
    seconds, and each asset check's outcome. A failed run raises `RunFailed`.
    """
    from pipeline_platform.definitions import build_definitions

    first, last = partition_range(partition, all_partitions, last)
    job = build_definitions().resolve_job_def(BATCH_JOB)
    instance = _instance()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    summary = {"partitions": [first, last], **summarise(result, instance)}
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        errors = [
            str(e.event_specific_data.error.message).strip()
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE" and e.event_specific_data.error
        ]
        raise RunFailed(f"batch run failed in {failed}: {' | '.join(errors)}")
    return summary
