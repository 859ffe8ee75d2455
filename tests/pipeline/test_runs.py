"""Which days a batch run covers: the command line's ranges and the demo's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline_platform.defs.runs import partition_range
from pipeline_platform.demo import day_ranges


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
