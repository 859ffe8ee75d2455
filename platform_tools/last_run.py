"""The batch job's last run as `pipeline-platform status` reports it, from the Dagster instance.

The instance is the one `materialize` and `ui` share locally (`<state dir>/dagster`), or
whichever `DAGSTER_HOME` names (a deployment's, reached through a tunnel, say). Where
no instance is reachable, `status` tells what it can from the lake's state and the
warehouse's bookkeeping instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from local_cloud.defaults import STATE_DIR
from pipeline_platform.defs.jobs import BATCH_JOB, RANGE_END_TAG, RANGE_START_TAG
from pipeline_platform.environment import Environment
from platform_tools.dagster_home import DAGSTER_FOLDER

_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
#: How many recent runs are looked at to find the last finished one behind runs in progress.
_RECENT_RUNS = 20


@dataclass(frozen=True)
class RunReport:
    """One run of the batch job: its outcome, windows, failed steps and checks."""

    run_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    windows: tuple[str, str] | None
    #: Failed step -> the first line of its error.
    failed_steps: dict[str, str] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    #: Checks of warning severity that did not pass (they do not fail a run).
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when the run ended in failure (or was stopped), or a check failed."""
        return self.status != dg.DagsterRunStatus.SUCCESS.value or bool(self.failed_checks)


@dataclass(frozen=True)
class Runs:
    """The last finished run of the batch job, and the one in progress, if any."""

    last: RunReport | None
    running: RunReport | None


def instance_home(environment: Environment) -> Path | None:
    """The Dagster instance `status` reads: `DAGSTER_HOME`, else locally the state dir's
    (when a run or the UI has made it); None when there is none to read."""
    configured = os.environ.get("DAGSTER_HOME")
    if configured:
        return Path(configured)
    local = STATE_DIR / DAGSTER_FOLDER
    if environment is Environment.LOCAL and (local / "dagster.yaml").exists():
        return local.resolve()
    return None


def read_runs(home: Path) -> Runs:
    """The batch job's last finished run and its run in progress, from the instance at `home`."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=BATCH_JOB), limit=_RECENT_RUNS)
        finished = next((r for r in runs if r.status in _FINISHED), None)
        running = next((r for r in runs if r.status not in _FINISHED), None)
        return Runs(
            _report(instance, finished) if finished else None,
            _report(instance, running) if running else None,
        )


def _time(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def _report(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunReport:
    from platform_tools.run_progress import STEP_LABELS, error_text, headline

    record = instance.get_run_record_by_id(run.run_id)
    first, last = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    failed_steps: dict[str, str] = {}
    failed_checks: list[str] = []
    warnings: list[str] = []
    events = instance.all_logs(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION},
    )
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and entry.step_key:
            label = STEP_LABELS.get(entry.step_key, entry.step_key)
            failed_steps[label] = headline(error_text(event))
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                continue
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.severity == dg.AssetCheckSeverity.WARN:
                warnings.append(name)
            else:
                failed_checks.append(name)
    return RunReport(
        run_id=run.run_id,
        status=run.status.value,
        started_at=_time(record.start_time if record else None),
        ended_at=_time(record.end_time if record else None),
        windows=(first, last) if first and last else None,
        failed_steps=failed_steps,
        failed_checks=sorted(set(failed_checks)),
        warnings=sorted(set(warnings)),
    )
