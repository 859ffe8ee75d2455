"""Which days a batch run covers: the command line's ranges and the demo's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from platform_tools.batch_runs import partition_range
from platform_tools.demo import combined, day_ranges


def test_a_range_runs_from_its_first_to_its_last_day_and_refuses_a_backward_one():
    """GIVEN --partition with --to THEN that span; backwards or before the first partition
    THEN a clear error."""
    assert partition_range("2023-11-16", False, "2023-11-20") == ("2023-11-16", "2023-11-20")
    assert partition_range("2023-11-16", False) == ("2023-11-16", "2023-11-16")
    with pytest.raises(ValueError, match="ends"):
        partition_range("2023-11-20", False, "2023-11-16")
    with pytest.raises(ValueError, match="is not a day"):
        partition_range("2023-10-01", False, "2023-11-16")


def test_the_demo_runs_the_seed_day_and_the_fleet_days_not_every_day_between():
    """GIVEN the seed (all on 2023-11-16) and a fleet whose readings start 24 hours ago
    THEN two ranges: the seed's day, and yesterday to today."""
    today = datetime.now(UTC).date()
    ranges = day_ranges({"fleet_since": time.time() - 24 * 3600})
    assert ranges == [
        ("2023-11-16", "2023-11-16"),
        ((today - timedelta(days=1)).isoformat(), today.isoformat()),
    ]


def test_runs_over_disjoint_days_add_their_rows_and_a_check_must_pass_in_every_run():
    """GIVEN the seed day's run and the fleet's run THEN rows and seconds add up, the export's
    whole-table count is kept once, and a check that failed in either run failed."""
    seed_day = {
        "assets": {"s3/lake/sensor_readings": {"rows": 7, "seconds": 1.0, "counts": {"n": 10}}},
        "checks": {"s3/lake/sensor_readings:export_items_reach_lake": True},
    }
    fleet_days = {
        "assets": {"s3/lake/sensor_readings": {"rows": 3, "seconds": 2.0, "counts": {"n": 10}}},
        "checks": {"s3/lake/sensor_readings:export_items_reach_lake": False},
    }
    summary = combined([seed_day, fleet_days])
    assert summary["assets"]["s3/lake/sensor_readings"] == {
        "rows": 10,
        "seconds": 3.0,
        "counts": {"n": 10},
    }
    assert summary["checks"] == {"s3/lake/sensor_readings:export_items_reach_lake": False}
