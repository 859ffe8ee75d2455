"""What `pipeline-platform materialize` shows while its run executes.

One line per step as it starts and as it ends (the export, each lake table, the
crawl, each warehouse table, dbt), with how long the step took and what it moved.
On a terminal the running step also gets a progress display (exports completed,
files read, reading days written, dbt's nodes), from what the steps report through
`pipeline_platform.progress`; piped or redirected, the output is the plain lines.

Dagster's event log (hundreds of lines a run) and dbt's output go to a file of the
run's own, `.platform/logs/materialize/<time>-<run>.log` (`--verbose` shows them on
the terminal too); a step that fails prints its error and where that file is.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressDisplay

from local_cloud.defaults import STATE_DIR
from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.catalog.assets import CRAWL_STEP
from pipeline_platform.defs.dbt.assets import DBT_STEP
from pipeline_platform.defs.lake.windows import CatchUp
from pipeline_platform.progress import Progress
from pipeline_platform.resources.dbt_in_process import DBT_ERRORS_HEADING
from platform_tools.batch_runs import INTERRUPTED_ERROR

#: Each run's log (Dagster's event log and dbt's output), one file per run.
LOG_DIR = STATE_DIR / "logs" / "materialize"


def _step(key: dg.AssetKey) -> str:
    # Dagster names the step of a single asset after its key.
    return key.to_python_identifier()


EXPORT_STEP = _step(keys.DYNAMODB_EXPORT)
LAKE_STEPS = {
    _step(keys.LAKE_READINGS): ws.READINGS_TABLE,
    _step(keys.LAKE_QUARANTINE): ws.QUARANTINE_TABLE,
    _step(keys.LAKE_RULE_ERRORS): ws.RULE_ERRORS_TABLE,
}
WAREHOUSE_STEPS = {
    _step(keys.RAW_READINGS): ws.READINGS_TABLE,
    _step(keys.RAW_QUARANTINE): ws.QUARANTINE_TABLE,
    _step(keys.RAW_RULE_ERRORS): ws.RULE_ERRORS_TABLE,
}
#: What a person calls each step of the batch job.
STEP_LABELS = {
    EXPORT_STEP: "export",
    **{step: f"lake {table}" for step, table in LAKE_STEPS.items()},
    CRAWL_STEP: "crawl",
    **{step: f"warehouse {ws.RAW_SCHEMA}.{table}" for step, table in WAREHOUSE_STEPS.items()},
    DBT_STEP: "dbt build",
}
_WIDTH = max(len(label) for label in STEP_LABELS.values())


def log_path(run_id: str, now: datetime | None = None) -> Path:
    """Where the log of run `run_id`, started `now`, goes."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return LOG_DIR / f"{stamp}-{run_id[:8]}.log"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass
class StepRecord:
    """What one step did, gathered from its events."""

    key: str
    started: float
    #: The first materialization of each asset (a range has one per window; they agree).
    materialized: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    #: Checks of warning severity that did not pass, with what they say.
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The step as a person calls it."""
        return STEP_LABELS.get(self.key, self.key)

    def moved(self) -> str:
        """What the step moved, in a few words, from its materializations and checks."""
        values = list(self.materialized.values())
        text = ""
        if values:
            if self.key == EXPORT_STEP:
                text = _export_moved(values[0])
            elif self.key in LAKE_STEPS:
                text = _lake_moved(values[0])
            elif self.key == CRAWL_STEP:
                text = _crawl_moved(values)
            elif self.key in WAREHOUSE_STEPS:
                text = _warehouse_moved(values[0])
            elif self.key == DBT_STEP:
                text = _dbt_moved(len(values), self.checks)
        failed = sorted(
            name for name, passed in self.checks.items() if not passed and name not in self.warnings
        )
        if failed and self.key != DBT_STEP:
            text += f"; FAILED check(s): {', '.join(failed)}"
        for name, said in sorted(self.warnings.items()):
            text += f"; warning from {name}: {said}"
        return text


def _export_moved(m: dict[str, Any]) -> str:
    exports = int(m.get("exports") or 0)
    if not exports:
        return "nothing to export: the lake's full export holds these windows"
    full = "FULL" in str(m.get("export_type"))
    what = "a full export" if full else _count(exports, "incremental export")
    return (
        f"{what}: {_count(int(m.get('items_exported') or 0), 'item')}"
        f" ({_bytes(int(m.get('billed_bytes') or 0))} billed)"
    )


def _lake_moved(m: dict[str, Any]) -> str:
    applied = int(m.get("changes_applied") or 0)
    days = m.get("reading_days_touched") or []
    held = (
        f"the table holds {_count(int(m.get('dagster/row_count') or 0), 'row')} on "
        f"{_count(int(m.get('reading_days') or 0), 'reading day')}"
    )
    if not applied:
        return f"no change; {held}"
    return (
        f"{_count(applied, 'change')} ({int(m.get('new_keys') or 0):,} new) on "
        f"{_count(len(days), 'reading day')}; {held}"
    )


def _crawl_moved(values: list[dict[str, Any]]) -> str:
    if not any(m.get("crawled") for m in values):
        return "no crawl needed: the catalog has every lake day and column"
    tables = sum(1 for m in values if m.get("table_exists"))
    partitions = sum(int(m.get("partitions") or 0) for m in values)
    return f"crawled: {_count(tables, 'table')}, {_count(partitions, 'partition')}"


def _warehouse_moved(m: dict[str, Any]) -> str:
    changed = int(m.get("rows_changed") or 0)
    held = (
        f"{_count(int(m.get('dagster/row_count') or 0), 'row')} on "
        f"{_count(int(m.get('reading_days') or 0), 'reading day')}"
    )
    if not changed:
        return f"no change; {held}"
    return f"{_count(changed, 'row')} changed (from {m.get('loaded_from')}); {held}"


def _dbt_moved(models: int, checks: dict[str, bool]) -> str:
    passed = sum(checks.values())
    failed = sorted(name for name, ok in checks.items() if not ok)
    text = f"{_count(models, 'model')} built, {passed} of {_count(len(checks), 'test')} passed"
    return text + (f"; FAILED: {', '.join(failed)}" if failed else "")


def _values(metadata: Any) -> dict[str, Any]:
    return {name: getattr(v, "value", v) for name, v in metadata.items()}


def _interrupted(event: dg.DagsterEvent) -> bool:
    error = getattr(event.event_specific_data, "error", None)
    return error is not None and error.cls_name == INTERRUPTED_ERROR


def error_text(event: dg.DagsterEvent) -> str:
    """A failed step's error, without Dagster's wrapping or the stack trace (in the log)."""
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return "no error reported"
    # A user code error's own exception is the cause Dagster wraps it in.
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    message = str(error.message).strip()
    prefix = f"{error.cls_name}: "
    for candidate in (prefix, f"{error.cls_name}:"):
        if candidate in message.split("\n", 1)[0]:
            message = message.split(candidate, 1)[1].strip()
            break
    return message


def headline(error: str) -> str:
    """One line of a step's error for a summary: the first error dbt reported, if the error
    lists them, else its first line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if DBT_ERRORS_HEADING in lines and lines[-1] != DBT_ERRORS_HEADING:
        return lines[lines.index(DBT_ERRORS_HEADING) + 1]
    return lines[0] if lines else ""


class _LogSink(io.TextIOBase):
    """Stands in for stdout and stderr while the run executes: everything to the run's log,
    and with `also` (--verbose) to the terminal too."""

    def __init__(self, log: TextIO, also: TextIO | None) -> None:
        self._log = log
        self._also = also
        self._lock = threading.Lock()

    def writable(self) -> bool:
        """A text stream one writes to."""
        return True

    def write(self, text: str) -> int:
        """Write `text` to the log (and the terminal)."""
        with self._lock:
            self._log.write(text)
            if self._also is not None:
                self._also.write(text)
        return len(text)

    def flush(self) -> None:
        """Flush the log (and the terminal)."""
        with self._lock:
            self._log.flush()
            if self._also is not None:
                self._also.flush()


@contextmanager
def _descriptors_to(log: TextIO, out: TextIO) -> Iterator[TextIO]:
    """Point the process's stdout and stderr (descriptors 1 and 2, which the run's child
    processes inherit, and C libraries write to) at `log`; yield a stream to where `out`
    went, for the display. Both are put back when the block ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    shown = os.fdopen(
        os.dup(out.fileno()),
        "w",
        buffering=1,
        encoding=getattr(out, "encoding", None) or "utf-8",
        errors="replace",
    )
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield shown
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for descriptor, original in zip((1, 2), saved, strict=True):
            os.dup2(original, descriptor)
            os.close(original)
        shown.close()


def _has_descriptor(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


class RunDisplay:
    """Shows a `materialize` run on `out` and writes its log; see the module docstring.

    Used as a context manager around the run: inside it, stdout and stderr (where
    Dagster's console logger, dbt and the run's child processes write) go to the run's
    log file; with `verbose` they go to the terminal too.
    """

    def __init__(self, out: TextIO, verbose: bool = False, terminal: bool | None = None) -> None:
        self.out = out
        self.verbose = verbose
        self.terminal = out.isatty() if terminal is None else terminal
        self.log_file: Path | None = None
        self.failed: list[str] = []
        self._steps: dict[str, StepRecord] = {}
        self._exit = ExitStack()
        self._console = Console(file=out, highlight=False, soft_wrap=True)
        self._bars: ProgressDisplay | None = None
        self._task: TaskID | None = None
        self._task_label = ""

    # --- the context: the log file, and stdout/stderr into it ---------------------

    def __enter__(self) -> RunDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
        self._exit.close()

    def run_started(self, run_id: str, plan: CatchUp, rebuild: bool) -> None:
        """Open the run's log, send stdout and stderr there, and say what the run covers."""
        self.log_file = log_path(run_id)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self._exit.enter_context(self.log_file.open("a", encoding="utf-8", buffering=1))
        if self.verbose or not _has_descriptor(self.out):
            # Python's streams only: --verbose copies them to the terminal as they come.
            sink = _LogSink(log, self.out if self.verbose else None)
            self._exit.enter_context(redirect_stdout(sink))
            self._exit.enter_context(redirect_stderr(sink))
        else:
            # The descriptors themselves, so that the run's child processes (Dagster's log
            # capture) and native libraries write to the log too, not over the display.
            self.out = self._exit.enter_context(_descriptors_to(log, self.out))
            self._console = Console(file=self.out, highlight=False, soft_wrap=True)
        how = "a rebuild from one full export" if rebuild else "from where the lake stopped"
        if plan.first_key != plan.last_key or plan.since is None or rebuild:
            windows = f"write windows {plan.first_key} .. {plan.last_key}"
        else:
            windows = f"write window {plan.first_key}"
        header = f"materialize: {windows}, {how} (run {run_id[:8]}, log {self.log_file})"
        log.write(header + "\n")
        self._say(header, style="bold")
        if self.terminal and not self.verbose:
            self._bars = ProgressDisplay(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._bars.start()

    # --- Dagster's events -------------------------------------------------------------

    def event(self, entry: dg.EventLogEntry) -> None:
        """Follow one event of the run (called as Dagster stores it)."""
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self._start(StepRecord(entry.step_key, entry.timestamp))
            return
        step = self._steps.get(entry.step_key)
        if step is None:
            return
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            step.materialized.setdefault(key, _values(materialization.metadata))
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            step.checks[name] = bool(evaluation.passed)
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN:
                step.warnings[name] = evaluation.description or "did not pass"
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self._end(step, entry.timestamp, "done")
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            if _interrupted(event):
                self._end(step, entry.timestamp, "STOPPED", "interrupted (Ctrl-C or SIGTERM)")
            else:
                self.failed.append(step.label)
                self._end(step, entry.timestamp, "FAILED", error_text(event))

    def _start(self, step: StepRecord) -> None:
        self._steps[step.key] = step
        self._line("start", step.label, "", style="dim")
        if self._bars is not None:
            self._task_label = step.label
            self._task = self._bars.add_task(step.label, total=None, count="")

    def _end(self, step: StepRecord, at: float, outcome: str, error: str | None = None) -> None:
        """The step's closing line; a failed step's error follows it, line by line."""
        if self._bars is not None and self._task is not None:
            self._bars.remove_task(self._task)
            self._task = None
        seconds = f"{max(at - step.started, 0.0):6.1f}s"
        style = "green" if outcome == "done" else "red"
        self._line(outcome, step.label, f"{seconds}  {step.moved()}", style)
        for line in (error or "").splitlines():
            if line.strip():
                self._say(f"{'':11}{line}", style=style)

    # --- the steps' progress ------------------------------------------------------------

    def progress(self, report: Progress) -> None:
        """Show how far the running step's phase has got (on a terminal)."""
        bars, task = self._bars, self._task
        if bars is None or task is None:
            return
        if report.total is not None:
            count = f"{report.done:,}/{report.total:,} {report.unit}"
        else:
            count = f"{report.done:,} {report.unit}" if report.unit else ""
        bars.update(
            task,
            description=f"{self._task_label}: {report.phase}",
            completed=report.done,
            total=report.total,
            count=count,
        )

    # --- output -------------------------------------------------------------------------

    def _line(self, outcome: str, label: str, text: str, style: str) -> None:
        self._say(f"  {outcome:<7} {label:<{_WIDTH}} {text}".rstrip(), style=style)

    def _say(self, text: str, style: str | None = None) -> None:
        if self.terminal:
            self._console.print(text, style=style, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def finished(self, lines: str) -> None:
        """Print the run's summary (after the steps' lines)."""
        self._say(lines)
