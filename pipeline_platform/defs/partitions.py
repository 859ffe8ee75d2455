"""Hourly partitions of *write* time, shared by every batch asset.

A partition is a window of the table's write time, not of reading time: partition
`2026-12-01-10:00` of an asset means the asset has taken in what was written to
the table (and to the quarantine bucket) from 10:00 to 11:00 UTC, whatever the
readings' own timestamps say. Late readings, readings of 2001 and updates of old
keys are therefore all in the window they were written in, and nothing depends on
a calendar of reading days. Where the readings land (their reading day) is the
lake's business: it merges each window into the `dt=` partitions the window
touches.

The current hour is a partition too (`end_offset=1`), so a run "up to now" is a
run of partitions; it takes the current hour's writes up to the moment it runs,
and the next run takes the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import dagster as dg

from pipeline_platform.environment import first_write_day

#: Partition key format of `WRITE_HOURS` (Dagster's hourly format).
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
#: When the first write window starts: midnight UTC of `FIRST_WRITE_DAY` (see
#: `environment.first_write_day`). Read once, when the code location loads: a partitions
#: definition is fixed for the life of the definitions that use it.
FIRST_WINDOW = datetime.combine(first_write_day(), time(0), tzinfo=UTC)
WINDOW = timedelta(hours=1)

WRITE_HOURS = dg.HourlyPartitionsDefinition(
    start_date=FIRST_WINDOW.strftime(HOUR_FORMAT), end_offset=1
)
# One run handles a whole backfill range: its windows become one export per 24 hours.
SINGLE_RUN = dg.BackfillPolicy.single_run()


def hour_key(moment: datetime) -> str:
    """The partition key of the write window holding `moment`."""
    return floor_hour(moment).strftime(HOUR_FORMAT)


def floor_hour(moment: datetime) -> datetime:
    """`moment` (UTC) rounded down to its hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def key_start(key: str) -> datetime:
    """When the write window of partition `key` starts (UTC)."""
    return datetime.strptime(key, HOUR_FORMAT).replace(tzinfo=UTC)


def run_span(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[datetime, datetime]:
    """The write-time span `[start, end)` of the run's partitions (UTC, aware)."""
    window = context.partition_time_window
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


def range_keys(first: datetime, last: datetime) -> tuple[str, str]:
    """The partition keys of the windows holding `first` and `last`."""
    return hour_key(first), hour_key(last)
