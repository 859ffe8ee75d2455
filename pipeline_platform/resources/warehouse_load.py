"""What a warehouse load takes and gives back, the same for DuckDB and Redshift."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pipeline_platform import warehouse_schema as ws


@dataclass(frozen=True)
class LoadSpec:
    """What to load: lake partitions of one table into `raw.<table>`."""

    table: str
    columns: tuple[ws.Column, ...]
    key: tuple[str, ...]
    bucket: str
    lake_prefix: str  # e.g. `lake/sensor_readings/`; partitions live in `dt=.../` below it
    days: tuple[date, ...]
    #: Extra lake columns beyond `columns`, name -> logical type (`double` or `string`).
    extra_columns: dict[str, str] = field(default_factory=dict)

    def partition_prefix(self, day: date) -> str:
        """The S3 prefix of one day's partition."""
        return f"{self.lake_prefix}dt={day.isoformat()}/"


@dataclass(frozen=True)
class LoadResult:
    """Rows in the warehouse table per loaded day after the merge, and its columns."""

    rows_by_day: dict[str, int]
    staged_rows: int
    added_columns: tuple[str, ...]
    table_columns: tuple[str, ...]
