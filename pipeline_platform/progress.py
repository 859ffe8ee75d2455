"""How far a step's long phases have got, for whoever watches the run in the same process.

A run the command line starts executes its steps in the command's own process (the
local executor); the steps say here how far their long phases have got (the exports
completed, the export files read, the lake days written) and the command line shows
it as a progress display. Nobody watches a deployment's run process, where a report
costs one function call. Dagster's event log keeps the steps' own log lines either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One phase of the running step: `done` of `total` `unit` (total None: not known)."""

    phase: str
    done: int = 0
    total: int | None = None
    unit: str = ""


Watcher = Callable[[Progress], None]

_watchers: list[Watcher] = []
_lock = threading.Lock()


def report(phase: str, done: int = 0, total: int | None = None, unit: str = "") -> None:
    """Tell the watchers (if any) that the running step is in `phase`, `done` of `total`."""
    with _lock:
        watchers = list(_watchers)
    for watcher in watchers:
        watcher(Progress(phase, done, total, unit))


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Call `watcher` with every report made while the block runs."""
    with _lock:
        _watchers.append(watcher)
    try:
        yield
    finally:
        with _lock:
            _watchers.remove(watcher)
