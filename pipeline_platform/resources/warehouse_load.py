"""What a warehouse load takes and gives back, the same for DuckDB and Redshift.

A load takes what the lake changed since the warehouse's last load: the change
sets of the lake versions it has not loaded (the rows each version added or
changed), or, for a warehouse that starts from a lake it has never loaded, the
lake's whole days. In one transaction it:

1. stages those rows, deriving `dt` from each row (`Table.dt`); of a key in
   several change sets, only its newest version;
2. notes the staged rows whose (key, version) the warehouse does not hold yet:
   the rows the load changes, and the reading hours and days dbt must rebuild;
3. replaces the staged keys (or days) in `raw.<table>`, and records the lake
   version loaded.

So a load costs what the lake changed, not the size of the days it touched.
Loading again changes nothing, and a load after a failed one takes every
version the failed one missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline_platform import warehouse_schema as ws


@dataclass(frozen=True)
class LakeFile:
    """One Parquet file of the lake, as S3 lists it."""

    key: str
    size: int


@dataclass(frozen=True)
class LoadSpec:
    """Lake files of one table to load into `raw.<table>`: change sets, or whole days."""

    table: ws.Table
    bucket: str
    lake_prefix: str  # e.g. `lake/sensor_readings/`; partitions live in `dt=.../` below it
    files: tuple[LakeFile, ...]
    #: The lake version these files are: recorded as loaded when the load commits.
    lake_version: int
    #: Where a warehouse that COPYs from a manifest (Redshift) writes it, in `bucket`.
    manifest_key: str
    #: Which lake the files are from (its state's id).
    lake_id: str
    #: True for the first load of a lake the warehouse has not loaded from before: the
    #: table is replaced as a whole rather than day by day.
    replace_all: bool = False
    #: True when `files` are change sets (a key may be in several; its newest version is
    #: loaded) that replace their keys; False when they are whole days that replace days.
    change_sets: bool = False
    #: Extra lake columns beyond the table's, name -> logical type (`double` or `string`).
    extra_columns: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """`raw.<table>`."""
        return f"{ws.RAW_SCHEMA}.{self.table.name}"


@dataclass(frozen=True)
class LoadResult:
    """What a load did, and the table's rows per reading day after it."""

    staged_rows: int
    #: Staged rows whose version the warehouse did not hold: new keys and new versions.
    changed_rows: int
    #: Rows of `raw.<table>` per reading day, every day of the table.
    rows_by_day: dict[str, int]
    added_columns: tuple[str, ...]
    #: Reading hours (and days) queued for dbt by this load.
    queued_hours: int
    queued_days: int


@dataclass(frozen=True)
class Loaded:
    """Which version of which lake a warehouse table holds."""

    version: int
    #: True when the table holds rows of another lake (one whose state was lost).
    other_lake: bool


@dataclass(frozen=True)
class Pending:
    """What dbt has still to rebuild: reading hours and days, up to a load."""

    hours: tuple[str, ...]
    days: tuple[str, ...]
    #: The latest queued load included, per lake table: what `clear` may remove.
    up_to: dict[str, int]
    #: A load replaced a whole table: the marts must be rebuilt from scratch.
    full_refresh: bool = False

    @property
    def empty(self) -> bool:
        """True when no load queued anything since dbt last built."""
        return not self.days and not self.full_refresh
