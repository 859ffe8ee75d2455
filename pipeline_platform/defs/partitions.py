"""Daily partitions by reading date (UTC), shared by every batch asset."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

# The seed's readings are from November 2023; `end_offset=1` makes today a partition.
DAILY = dg.DailyPartitionsDefinition(start_date="2023-11-01", end_offset=1)
# One run handles a whole backfill range: one table export serves every day in it.
SINGLE_RUN = dg.BackfillPolicy.single_run()


def days_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> tuple[date, ...]:
    """The days (UTC reading dates) the run covers, first to last."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return tuple(first + timedelta(days=i) for i in range((end - first).days))
