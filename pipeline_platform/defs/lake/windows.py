"""Which exports a run makes, and where a catch-up starts: pure functions of time and state.

A run covers a span of write time (its partitions, ending at the latest now). The
table's writes in that span are exported within AWS's limits for incremental
exports (`ExportFromTime` inclusive, `ExportToTime` exclusive, at least 15 minutes
and at most 24 hours, ending in the past):

- a span longer than 24 hours is several exports, one per 24 hours;
- a span (or its last piece) shorter than 15 minutes is widened backwards to 15
  minutes. The merge keeps the latest write of each key, so writes exported
  twice change nothing: overlapping exports are safe, and a catch-up never waits;
- the first run on an empty lake, and a rebuild, make one full export instead.
  Writes before the lake's latest full export (its baseline) are in the lake
  already: a span before it exports nothing.

Exports reach back only to the table's earliest restorable time (point-in-time
recovery keeps at most 35 days, and nothing from before it was enabled). Two
cases follow from it:

- in the first 15 minutes of a table's recovery history there is no 15-minute
  window to widen to: the run makes a full export instead. The table then holds
  at most 15 minutes of writes, so it costs no more than the widened window
  would (AWS bills every incremental export at least 10 MB);
- writes not merged yet that are older than that history can no longer be
  exported incrementally (the pipeline was stopped for longer than the
  recovery window): the run stops and says to rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline_platform.defs.lake.state import LakeState
from pipeline_platform.defs.partitions import FIRST_WINDOW, WINDOW, floor_hour, hour_key

FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"
#: AWS accepts incremental export windows from 15 minutes to 24 hours.
MIN_INCREMENTAL = timedelta(minutes=15)
MAX_INCREMENTAL = timedelta(hours=24)
#: S3 objects (quarantine, rule errors) are taken from this long before a span starts: an
#: upload that began before the span's start but finished after the previous run listed the
#: bucket carries a `LastModified` before the start. Their merge is idempotent too.
OBJECT_OVERLAP = timedelta(minutes=15)


@dataclass(frozen=True)
class PlannedExport:
    """One `ExportTableToPointInTime` request.

    `start` is `ExportFromTime` (None for a full export); `end` is `ExportToTime`, or
    the `ExportTime` of a full export. `covers` is the span of writes the export is
    there for, before any widening.
    """

    export_type: str
    start: datetime | None
    end: datetime
    covers: tuple[datetime | None, datetime]

    @property
    def name(self) -> str:
        """A folder name saying what the export holds (`full_<time>`, `<from>_<to>`)."""
        stamp = "%Y%m%dT%H%M%S"
        if self.start is None:
            return f"full_{self.end:{stamp}}"
        return f"{self.start:{stamp}}_{self.end:{stamp}}"


@dataclass(frozen=True)
class ExportPlan:
    """The exports of a run, and why it makes them (or none)."""

    exports: tuple[PlannedExport, ...]
    reason: str

    @property
    def full(self) -> bool:
        """True when the run exports the whole table."""
        return any(e.export_type == FULL_EXPORT for e in self.exports)


class WritesTooOld(ValueError):
    """Writes the lake has not merged are older than the table's recovery history."""


def _full(end: datetime, why: str) -> ExportPlan:
    return ExportPlan(
        (PlannedExport(FULL_EXPORT, None, end, (None, end)),),
        f"{why}: one full export of the table as of {end:%Y-%m-%d %H:%M:%S} UTC",
    )


def plan_exports(
    start: datetime,
    end: datetime,
    now: datetime,
    baseline: datetime | None,
    rebuild: bool = False,
    earliest: datetime | None = None,
) -> ExportPlan:
    """The exports that take the table's writes of `[start, end)` (capped at `now`).

    `earliest` is the table's earliest restorable time (None when unknown).
    Raises `WritesTooOld` when writes to export are older than it.
    """
    end = min(end, now)
    if rebuild or baseline is None:
        return _full(end, "a rebuild" if rebuild else "the first run on an empty lake")
    start = max(start, baseline)
    if earliest is not None and start < end and start < earliest:
        raise WritesTooOld(
            f"the lake has not merged the writes since {start:%Y-%m-%d %H:%M:%S} UTC, and the "
            f"table's point-in-time recovery reaches back only to {earliest:%Y-%m-%d %H:%M:%S} "
            "UTC: run `pipeline-platform materialize --rebuild` (a full export, merged into "
            "the lake) to take them"
        )
    if earliest is not None and start < end and end - earliest < MIN_INCREMENTAL:
        return _full(
            end,
            "the table's recovery history is shorter than the 15 minutes of the shortest "
            "incremental export (it holds no more than those minutes of writes)",
        )
    if end <= start:
        return ExportPlan(
            (),
            f"the lake's full export of {baseline:%Y-%m-%d %H:%M:%S} UTC holds every write "
            "of these windows",
        )
    exports = []
    piece = start
    while piece < end:
        piece_end = min(piece + MAX_INCREMENTAL, end)
        widened = min(piece, piece_end - MIN_INCREMENTAL)
        if earliest is not None:
            widened = max(widened, earliest)
        exports.append(PlannedExport(INCREMENTAL_EXPORT, widened, piece_end, (piece, piece_end)))
        piece = piece_end
    note = " (widened to AWS's 15 minutes)" if exports[-1].start != exports[-1].covers[0] else ""
    return ExportPlan(
        tuple(exports),
        f"{len(exports)} incremental export(s) of the writes from {start:%Y-%m-%d %H:%M:%S} "
        f"to {end:%Y-%m-%d %H:%M:%S} UTC{note}",
    )


def object_span(
    start: datetime,
    end: datetime,
    now: datetime,
    baseline: datetime | None,
    rebuild: bool = False,
) -> tuple[datetime | None, datetime] | None:
    """Which S3 objects (by `LastModified`) a run over `[start, end)` takes, as `[low, end)`.

    `low` is None for the first run or a rebuild (every object); None altogether when
    the lake's first run already took every object of the span.
    """
    end = min(end, now)
    if rebuild or baseline is None:
        return None, end
    start = max(start, baseline)
    if end <= start:
        return None
    return start - OBJECT_OVERLAP, end


@dataclass(frozen=True)
class CatchUp:
    """The partition range of a catch-up run, and the span of writes it takes.

    `since` is where the lake stopped (None on an empty lake): the run's exports start
    there rather than at its first window's start, so a catch-up in the middle of an
    hour does not export that hour's first part again.
    """

    first_key: str
    last_key: str
    since: datetime | None
    end: datetime


def catch_up(states: dict[str, LakeState], now: datetime, complete_only: bool) -> CatchUp | None:
    """The windows a catch-up runs: from the earliest lake watermark to `now`.

    `complete_only` (the schedule) stops at the last complete hour; otherwise the run
    takes the current hour up to `now` too. When a table has never been merged, the
    run starts the lake (its first run takes everything), so only the last window
    runs. None when the lake has every complete window already.
    """
    end = floor_hour(now) if complete_only else now
    last = hour_key(end - WINDOW if complete_only else now)
    watermarks = [s.watermark for s in states.values()]
    if not watermarks or None in watermarks:
        return CatchUp(last, last, None, end)
    since = min(w for w in watermarks if w is not None)
    if since >= end:
        return None
    # A lake that stopped before the first window (a deployment's first day set later than
    # its first export) runs from the first window; its exports still start where it stopped.
    return CatchUp(hour_key(max(since, FIRST_WINDOW)), last, since, end)


def unprocessed_windows(state: LakeState, now: datetime) -> list[datetime]:
    """Where each complete write window the lake table has not taken in full starts.

    Everything before the table's watermark is taken (its first covered span reaches
    back to its first full export). After it, a window is taken when one covered span
    holds all of it (a window run again by name, after a gap). The current hour is not
    complete yet: the next run takes it. A table never merged has none: its first run
    takes everything the source holds.
    """
    watermark = state.watermark
    if watermark is None:
        return []
    missing = []
    start = max(floor_hour(watermark), FIRST_WINDOW)
    while start + WINDOW <= now:
        end = start + WINDOW
        if not any((low is None or low <= start) and end <= high for low, high in state.covered):
            missing.append(start)
        start = end
    return missing
