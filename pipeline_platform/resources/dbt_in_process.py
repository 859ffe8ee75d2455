"""dbt commands run in the run's own process through dbt's Python API.

A `dbt build` in a process of its own spends about 3 s on 2 cores before its first
model: a new interpreter imports dbt-core and the adapter (2.2 s), registers the
adapter and loads the saved parse. In the run's process the imports happen once,
in the background while the earlier steps run (`preload`), and this project's
build takes about 2 s instead of 6. dagster-dbt still turns dbt's structured
events into Dagster's (models as outputs, tests as asset checks): dbt's callback
hands over the same dictionaries a subprocess prints as JSON lines.

dbt runs in a thread of its own so that its events reach Dagster (and the UI) as
each node finishes; a single build runs at a time per process (dbt's global state
is per process), which the run's in-process executor and a step's own process in
a deployment both give.
"""

from __future__ import annotations

import importlib
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from pipeline_platform.resources.dbt_folders import (
    keep_parse_state,
    prune_command_folders,
    seed_parse_state,
)

#: The dbt events dagster-dbt turns into Dagster events: one per finished node.
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})

#: Where a failed command's error lists the errors dbt reported, one per paragraph.
DBT_ERRORS_HEADING = "Errors reported by dbt:"

#: How long a stopped run waits for dbt's thread once its queries were cancelled.
CANCEL_GRACE_SECONDS = 10.0

_preload_lock = threading.Lock()
_preloading: threading.Thread | None = None


def preload(adapter_type: str) -> None:
    """Start importing dbt-core and the `adapter_type` plugin in the background (once).

    The imports are CPU-bound, but the steps before dbt mostly wait (on the AWS
    endpoint, on DuckDB, which releases the interpreter lock), so on 2 cores they
    are hidden behind those steps.
    """
    global _preloading
    with _preload_lock:
        if _preloading is None:
            _preloading = threading.Thread(
                target=_import_dbt, args=(adapter_type,), name="dbt-preload", daemon=True
            )
            _preloading.start()


def _import_dbt(adapter_type: str) -> None:
    try:
        importlib.import_module("dbt.cli.main")
        importlib.import_module(f"dbt.adapters.{adapter_type}")
    except Exception:  # the build imports them again and reports the error there
        pass


def _wait_for_preload() -> None:
    # Importing a module another thread is importing waits for it anyway; joining first
    # keeps the two threads from interleaving dbt's many imports.
    preloading = _preloading
    if preloading is not None:
        preloading.join()


@dataclass
class InProcessDbtInvocation:
    """One dbt command to run in this process; `stream()` runs it and yields Dagster events."""

    args: Sequence[str]
    target_path: Path
    manifest: Mapping[str, Any]
    translator: DagsterDbtTranslator
    context: dg.AssetExecutionContext | dg.OpExecutionContext | None
    project: DbtProject | None
    adapter_type: str
    #: The project's own target folder, where the parse is kept between commands.
    project_target: Path

    @property
    def dbt_command(self) -> str:
        """The command as a shell would run it (for logs and errors)."""
        return " ".join(["dbt", *self.args])

    def stream(self) -> Iterator[Any]:
        """Run the command and yield an output or check result per finished node, as they finish.

        Raises `DagsterDbtCliRuntimeError` once every result is out if dbt failed
        (a model error, a failed test), as dagster-dbt's subprocess invocation does.
        """
        results: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        errors: list[str] = []
        outcome: dict[str, Any] = {}

        def on_event(message: Any) -> None:
            # Called from dbt's node threads: only cheap work and thread-safe containers.
            if message.info.level == "error":
                errors.append(message.info.msg)
            if message.info.name in RESULT_EVENTS:
                from dbt_common.events.functions import msg_to_dict

                results.put(msg_to_dict(message))

        def run() -> None:
            try:
                from dbt.cli.main import dbtRunner

                outcome["result"] = dbtRunner(callbacks=[on_event]).invoke(list(self.args))
            except BaseException as error:  # reported by the consuming thread
                outcome["error"] = error
            finally:
                try:
                    _release_connections(self.adapter_type)
                finally:
                    results.put(None)  # the consumer waits for this, whatever happened

        _wait_for_preload()
        seed_parse_state(self.project_target, self.target_path)
        worker = threading.Thread(target=run, name="dbt", daemon=True)
        worker.start()
        try:
            while (raw_event := results.get()) is not None:
                event = DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={})
                yield from event.to_default_asset_events(
                    manifest=self.manifest,
                    dagster_dbt_translator=self.translator,
                    context=self.context,
                    target_path=self.target_path,
                    project=self.project,
                )
        except BaseException:
            # The run was stopped (or the consumer gave up): stop dbt's queries rather than
            # leave them running behind a failed step.
            _cancel_open_connections()
            worker.join(CANCEL_GRACE_SECONDS)
            raise
        worker.join()
        keep_parse_state(self.target_path, self.project_target)
        # Folders are named `<op>-<run>-<command>` by dagster-dbt.
        prune_command_folders(self.project_target, prefix=self.target_path.name.split("-")[0] + "-")
        self._raise_on_failure(outcome, errors)

    def _raise_on_failure(self, outcome: Mapping[str, Any], errors: list[str]) -> None:
        error = outcome.get("error")
        result = outcome.get("result")
        if error is None and result is not None and result.success:
            return
        if error is None and result is not None:
            error = result.exception
        details = "\n\n".join(["", DBT_ERRORS_HEADING, *errors]) if errors else ""
        if error is not None:
            details += f"\n\ndbt stopped with {type(error).__name__}: {error}"
        log = self.target_path / "dbt.log"
        raise DagsterDbtCliRuntimeError(
            description=(
                f"The dbt command\n\n`{self.dbt_command}`\n\nfailed; its debug log is {log}."
                + details
            )
        ) from error


def _release_connections(adapter_type: str) -> None:
    """Close what dbt keeps open between commands in a process.

    dbt-duckdb keeps the database open for the next command; that holds DuckDB's
    file lock, which would keep every other process (the UI's next run, the demo's
    report, a notebook) out of the warehouse until this one exits.
    """
    if adapter_type == "duckdb":
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        DuckDBConnectionManager.close_all_connections()


def _cancel_open_connections() -> None:
    try:
        from dbt.adapters.factory import FACTORY

        adapters: list[Any] = list(FACTORY.adapters.values())
        for adapter in adapters:
            adapter.cancel_open_connections()
    except Exception:  # best effort: the run is stopping either way
        pass
