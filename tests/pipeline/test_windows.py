"""Which exports a run makes and where a catch-up starts: AWS's window limits, the lake's state."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from pipeline_platform.defs.lake.state import LakeState
from pipeline_platform.defs.lake.windows import (
    FULL_EXPORT,
    INCREMENTAL_EXPORT,
    MAX_INCREMENTAL,
    MIN_INCREMENTAL,
    WritesTooOld,
    catch_up,
    object_span,
    plan_exports,
    unprocessed_windows,
)

NOW = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
# The table's recovery history began long ago: no clamping unless a test says so.
EARLIEST = NOW - timedelta(days=30)


def _state(table: str, watermark: datetime | None) -> LakeState:
    state = LakeState(table)
    if watermark is not None:
        state.baseline = watermark - 2 * HOUR
        state.cover(None, watermark)
    return state


def test_an_empty_lake_and_a_rebuild_make_one_full_export_ending_at_the_span_or_now():
    """GIVEN no baseline, or a rebuild WHEN planned THEN one full export, at the span's end or
    now, whichever is earlier."""
    first = plan_exports(NOW - HOUR, NOW + HOUR, NOW, baseline=None)
    rebuild = plan_exports(NOW - 2 * HOUR, NOW - HOUR, NOW, NOW - 5 * HOUR, rebuild=True)

    assert [(e.export_type, e.start, e.end) for e in first.exports] == [(FULL_EXPORT, None, NOW)]
    assert [(e.export_type, e.end) for e in rebuild.exports] == [(FULL_EXPORT, NOW - HOUR)]
    assert "first run" in first.reason and "rebuild" in rebuild.reason


def test_an_hour_after_the_baseline_is_one_incremental_export_of_that_hour():
    """GIVEN a lake whose baseline is before the window WHEN the hour 09:00..10:00 runs THEN one
    incremental export of exactly that hour."""
    start = NOW.replace(minute=0) - HOUR
    plan = plan_exports(start, start + HOUR, NOW, baseline=start - HOUR, earliest=EARLIEST)

    (only,) = plan.exports
    assert (only.export_type, only.start, only.end) == (INCREMENTAL_EXPORT, start, start + HOUR)


def test_a_catch_up_ten_minutes_after_the_last_window_widens_backwards_to_fifteen_minutes():
    """GIVEN the lake 10 minutes behind now WHEN the catch-up runs THEN one incremental export of
    15 minutes ending now: widened backwards, never waiting, never a full export."""
    since = NOW - timedelta(minutes=10)
    plan = plan_exports(since, NOW + HOUR, NOW, baseline=since - HOUR, earliest=EARLIEST)

    (only,) = plan.exports
    assert only.export_type == INCREMENTAL_EXPORT
    assert (only.start, only.end) == (NOW - MIN_INCREMENTAL, NOW)
    assert only.covers == (since, NOW)
    assert "widened" in plan.reason


def test_a_span_longer_than_a_day_is_one_export_per_day_each_within_aws_limits():
    """GIVEN a lake 50 hours behind WHEN planned THEN three incremental exports that cover the
    span without a gap, each between 15 minutes and 24 hours, the last ending now."""
    since = NOW - 50 * HOUR
    plan = plan_exports(since, NOW, NOW, baseline=since, earliest=EARLIEST)

    assert len(plan.exports) == 3
    assert all(MIN_INCREMENTAL <= e.end - e.start <= MAX_INCREMENTAL for e in plan.exports)
    covers = [e.covers for e in plan.exports]
    assert covers[0][0] == since and covers[-1][1] == NOW
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covers))


def test_windows_the_baseline_holds_export_nothing_and_a_window_across_it_starts_there():
    """GIVEN a lake whose full export was taken at 09:30 WHEN the windows 07:00..09:00 run THEN
    nothing is exported; WHEN 09:00..10:00 runs THEN the export starts at 09:30."""
    baseline = NOW.replace(minute=30) - HOUR
    before = plan_exports(baseline - 2 * HOUR - timedelta(minutes=30), baseline, NOW, baseline)
    across = plan_exports(
        baseline - timedelta(minutes=30),
        baseline + timedelta(minutes=30),
        NOW,
        baseline,
        earliest=EARLIEST,
    )

    assert before.exports == () and "holds every write" in before.reason
    (only,) = across.exports
    assert only.covers[0] == baseline


def test_the_recovery_history_bounds_exports_a_young_table_is_exported_in_full():
    """GIVEN a table whose recovery began 20 minutes ago WHEN a 5-minute catch-up runs THEN the
    widened window starts no earlier than that; GIVEN one that began 10 minutes ago THEN no
    15-minute window exists and the run makes a full export of it."""
    since = NOW - timedelta(minutes=5)
    older = plan_exports(since, NOW, NOW, since - HOUR, earliest=NOW - timedelta(minutes=20))
    young = plan_exports(since, NOW, NOW, since - HOUR, earliest=NOW - timedelta(minutes=10))

    (widened,) = older.exports
    assert widened.start == NOW - MIN_INCREMENTAL
    assert [e.export_type for e in young.exports] == [FULL_EXPORT]
    assert "recovery history" in young.reason


def test_writes_older_than_the_recovery_history_stop_the_run_and_say_to_rebuild():
    """GIVEN a lake that stopped 40 days ago and a 35-day recovery history WHEN planned THEN the
    run refuses, naming both times and the rebuild."""
    since = NOW - timedelta(days=40)
    with pytest.raises(WritesTooOld, match="--rebuild"):
        plan_exports(since, NOW, NOW, since, earliest=NOW - timedelta(days=35))


def test_objects_are_taken_with_an_overlap_and_all_of_them_on_the_first_run():
    """GIVEN a bucket's objects WHEN the lake table is new THEN every object up to the span's
    end; later THEN from before the span's start (an upload begun earlier may finish later)."""
    assert object_span(NOW - HOUR, NOW, NOW, baseline=None) == (None, NOW)
    low, high = object_span(NOW - HOUR, NOW, NOW, baseline=NOW - 2 * HOUR)
    assert low < NOW - HOUR and high == NOW
    assert object_span(NOW - 3 * HOUR, NOW - 2 * HOUR, NOW, baseline=NOW - HOUR) is None


def test_a_catch_up_starts_where_the_table_furthest_behind_stopped_and_ends_now():
    """GIVEN the readings 3 hours behind and rule errors 5 hours behind WHEN catching up from
    the command line THEN the windows from the rule errors' hour to the current hour, from
    exactly where they stopped."""
    readings, errors = NOW - 3 * HOUR, NOW - 5 * HOUR - timedelta(minutes=7)
    plan = catch_up({"r": _state("r", readings), "e": _state("e", errors)}, NOW, False)

    assert plan is not None
    assert (plan.first_key, plan.last_key) == ("2026-12-01-05:00", "2026-12-01-10:00")
    assert (plan.since, plan.end) == (errors, NOW)


def test_the_schedule_runs_complete_windows_only_and_skips_when_the_lake_has_them():
    """GIVEN a tick at 10:05 WHEN the lake stopped at 08:00 THEN the windows 08:00 and 09:00;
    WHEN it stopped at 10:00 THEN nothing to run."""
    tick = NOW.replace(minute=5)
    behind = catch_up({"r": _state("r", tick.replace(minute=0) - 2 * HOUR)}, tick, True)
    caught_up = catch_up({"r": _state("r", tick.replace(minute=0))}, tick, True)

    assert behind is not None and (behind.first_key, behind.last_key) == (
        "2026-12-01-08:00",
        "2026-12-01-09:00",
    )
    assert behind.end == tick.replace(minute=0)
    assert caught_up is None


def test_a_lake_that_stopped_before_the_first_window_runs_from_the_first_window():
    """GIVEN a lake that stopped two days before the first write window (the deployment's first
    day set later than its first export) WHEN catching up THEN the run's windows start at the
    first window, and its exports still start exactly where the lake stopped."""
    from pipeline_platform.defs.partitions import FIRST_WINDOW

    stopped = FIRST_WINDOW - timedelta(days=2, minutes=7)
    plan = catch_up({"r": _state("r", stopped)}, NOW, False)
    assert plan is not None
    assert plan.first_key == FIRST_WINDOW.strftime("%Y-%m-%d-%H:%M")
    assert plan.since == stopped


def test_an_empty_lake_catches_up_with_its_last_window_only():
    """GIVEN a lake table never merged WHEN catching up THEN only the current window runs (its
    first run takes everything there is)."""
    plan = catch_up({"r": _state("r", NOW - HOUR), "new": LakeState("new")}, NOW, False)
    assert plan is not None and (plan.first_key, plan.last_key, plan.since) == (
        "2026-12-01-10:00",
        "2026-12-01-10:00",
        None,
    )


def test_the_lake_state_merges_covered_spans_and_survives_its_json():
    """GIVEN spans merged in any order, with a gap WHEN recorded THEN they join where they touch,
    the watermark is the end of the first, and the state reads back from its JSON equal."""
    state = LakeState("sensor_readings")
    state.cover(None, NOW - 5 * HOUR)
    state.cover(NOW - 2 * HOUR, NOW - HOUR)  # a later window first: a gap stays
    assert state.watermark == NOW - 5 * HOUR
    state.cover(NOW - 5 * HOUR - timedelta(minutes=15), NOW - 2 * HOUR)  # widened: overlaps
    state.apply({"2001-01-01": 3}, {"2001-01-01": 3})
    state.extras = {"pressure": "double"}

    assert state.covered == [(None, NOW - HOUR)]
    assert state.watermark == NOW - HOUR
    assert LakeState.from_json(state.to_json()) == state


def test_unprocessed_windows_are_the_complete_hours_after_the_watermark_not_taken_since():
    """GIVEN a lake table that stopped at 06:30, and then took the 08:00 window by name
    WHEN asked at 10:20 which write windows it has not taken
    THEN 06:00 (half taken) and 07:00 and 09:00; not 08:00, and not 10:00 (not complete)."""
    state = _state("sensor_readings", datetime(2026, 12, 1, 6, 30, tzinfo=UTC))
    state.cover(datetime(2026, 12, 1, 7, 45, tzinfo=UTC), datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    missing = unprocessed_windows(state, NOW)

    assert [f"{m:%H:%M}" for m in missing] == ["06:00", "07:00", "09:00"]


def test_a_table_caught_up_to_now_or_never_merged_has_no_unprocessed_window():
    """GIVEN a table whose watermark is in the current hour, and one never merged
    WHEN asked THEN neither has a window to report (the first run takes everything)."""
    assert unprocessed_windows(_state("sensor_readings", NOW - timedelta(minutes=5)), NOW) == []
    assert unprocessed_windows(LakeState("sensor_readings"), NOW) == []
