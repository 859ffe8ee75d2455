"""Which write windows a command-line run covers, and how it says what it did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_platform.defs.jobs import RANGE_END_TAG, RANGE_START_TAG, run_tags
from pipeline_platform.defs.lake.run_context import REBUILD_TAG, SINCE_TAG
from pipeline_platform.defs.lake.windows import CatchUp
from platform_tools.batch_runs import describe, window_range


def test_a_range_of_windows_runs_from_its_first_to_its_last_and_refuses_a_backward_one():
    """GIVEN --partition with --to THEN that span of hours; backwards, not an hour, or before the
    first window THEN a clear error."""
    plan = window_range("2026-11-30-10:00", "2026-11-30-13:00")
    assert (plan.first_key, plan.last_key, plan.since) == (
        "2026-11-30-10:00",
        "2026-11-30-13:00",
        None,
    )
    assert window_range("2026-11-30-10:00").last_key == "2026-11-30-10:00"
    with pytest.raises(ValueError, match="ends"):
        window_range("2026-11-30-13:00", "2026-11-30-10:00")
    with pytest.raises(ValueError, match="is not a write window"):
        window_range("2026-11-30")
    with pytest.raises(ValueError, match="is not a write window"):
        window_range("2023-11-16-10:00")


def test_a_catch_up_runs_its_partition_range_from_where_the_lake_stopped():
    """GIVEN a catch-up from 10:37 WHEN its run's tags are made THEN the partition range of its
    windows and where the lake stopped; a rebuild says so too."""
    since = datetime(2026, 12, 1, 10, 37, tzinfo=UTC)
    plan = CatchUp("2026-12-01-10:00", "2026-12-01-12:00", since, since + timedelta(hours=2))

    tags = run_tags(plan)
    assert tags == {
        RANGE_START_TAG: "2026-12-01-10:00",
        RANGE_END_TAG: "2026-12-01-12:00",
        SINCE_TAG: since.isoformat(),
    }
    assert run_tags(plan, rebuild=True)[REBUILD_TAG] == "true"


def test_the_summary_says_which_windows_were_exported_and_which_reading_days_they_touched():
    """GIVEN a run's summary WHEN described THEN the windows exported, the items and bytes, and
    for each lake table the reading days touched, with any failed check named."""
    summary = {
        "partitions": ["2026-12-01-10:00", "2026-12-01-12:00"],
        "windows": {
            "export_type": "INCREMENTAL_EXPORT",
            "plan": "1 incremental export(s) of the writes from ...",
            "exported": [["2026-12-01T10:37:00+00:00", "2026-12-01T12:20:00+00:00"]],
            "items_exported": 3,
            "billed_bytes": 10_000_000,
        },
        "reading_days_touched": {"readings": ["2001-01-01", "2026-11-28"], "rule errors": []},
        "checks": {"a:ok": True, "b:lake_days_equal_warehouse_days": False},
    }

    text = describe(summary)

    assert "write windows 2026-12-01-10:00 .. 2026-12-01-12:00" in text
    assert "[2026-12-01T10:37:00+00:00, 2026-12-01T12:20:00+00:00)" in text
    assert "3 item(s), 10000000 byte(s)" in text
    assert "readings: 2 reading day(s) touched: 2001-01-01, 2026-11-28" in text
    assert "rule errors: 0 reading day(s) touched" in text
    assert "FAILED: b:lake_days_equal_warehouse_days" in text
