"""The lake merge: each window's changes go into the reading days they touch, the latest write of
each key wins, history is never removed, and only the days that changed are written again.

A folder stands in for the lake bucket: each merge's rewritten days replace the folder's, as
the lake asset replaces a day's objects in S3."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.lake import merge, shaping
from tests.pipeline.test_shaping import change, export_file, item

DAY = 1700136000  # 2023-11-16T12:00:00Z
Y2001 = 978307200 + 3600  # 2001-01-01T01:00:00Z
WRITE = 1764579600_000000  # 2025-12-01T09:00:00Z, in microseconds


class Lake:
    """A lake table in a folder: `merge` runs one window's export files into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "lake"
        self.runs = 0
        self.extras: dict[str, str] = {}

    def existing(self) -> list[str]:
        return sorted(str(p) for p in self.files.rglob("*.parquet"))

    def merge(self, lines: list[dict], export_time: datetime | None = None) -> merge.MergeResult:
        self.runs += 1
        run = self.root / f"run{self.runs}"
        run.mkdir()
        export = export_file(run / "export.json.gz", lines)
        with duckdb.connect() as con:
            shaping.read_export(con, [export], export_time)
            result = merge.merge(
                con, ws.READINGS, self.existing(), run / "out", run / "changes.parquet", self.extras
            )
        self.extras = result.extras
        for day in result.days:  # the day's objects replaced, as in S3
            shutil.rmtree(self.files / f"dt={day}", ignore_errors=True)
            shutil.copytree(run / "out" / f"dt={day}", self.files / f"dt={day}")
        return result

    def rows(self) -> dict[tuple[str, float], tuple]:
        """(device_id, reading_epoch) -> (temperature, written_at, dt)."""
        found = duckdb.execute(
            f"select device_id, reading_epoch, temperature, written_at, cast(dt as varchar) "
            f"from read_parquet('{self.files}/**/*.parquet', hive_partitioning = true, "
            "union_by_name = true)"
        ).fetchall()
        keys = [(d, e) for d, e, *_ in found]
        assert len(keys) == len(set(keys)), "a key is in the lake twice"
        return {(d, e): tuple(rest) for d, e, *rest in found}

    def changed_keys(self) -> list[tuple]:
        """The change set of the latest merge."""
        path = self.root / f"run{self.runs}" / "changes.parquet"
        return duckdb.execute(
            f"select device_id, reading_epoch from '{path}' order by all"
        ).fetchall()


def _at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC).replace(tzinfo=None)


def test_an_update_replaces_the_key_and_only_its_day_is_written_again(tmp_path):
    """GIVEN a lake with readings on two days WHEN a later window updates one of them THEN the
    key holds the new version, the change set names it, and only its day was rewritten."""
    lake = Lake(tmp_path)
    lake.merge([change(item("a", DAY, DAY, 20), WRITE), change(item("b", Y2001, DAY, 5), WRITE)])
    untouched = (lake.files / "dt=2001-01-01").stat().st_mtime_ns

    result = lake.merge([change(item("a", DAY, DAY, 25), WRITE + 60_000_000)])

    assert (result.applied, result.new_keys, result.superseded) == (1, 0, 0)
    assert result.days == ("2023-11-16",)
    assert lake.rows()[("a", DAY)] == (25.0, _at(WRITE + 60_000_000), "2023-11-16")
    assert lake.changed_keys() == [("a", DAY)]
    assert (lake.files / "dt=2001-01-01").stat().st_mtime_ns == untouched


def test_a_change_set_holds_the_changed_rows_whole_with_the_day_files_columns(tmp_path):
    """GIVEN a lake with two readings WHEN a later window updates one of them THEN the merge's
    change set holds that row whole (its new values), with the day files' columns in order,
    which is what a warehouse loads."""
    lake = Lake(tmp_path)
    lake.merge([change(item("a", DAY, DAY, 20), WRITE), change(item("b", Y2001, DAY, 5), WRITE)])
    lake.merge([change(item("a", DAY, DAY, 25), WRITE + 60_000_000)])

    changes = tmp_path / "run2" / "changes.parquet"
    assert pq.read_schema(changes).names == list(ws.READINGS.file_columns)
    assert duckdb.execute(f"select device_id, temperature from '{changes}'").fetchall() == [
        ("a", 25.0)
    ]


def test_rerunning_an_older_window_after_a_newer_one_changes_nothing(tmp_path):
    """GIVEN windows 1 then 2 merged, 2 holding a newer version of a key of 1 WHEN window 1 is
    merged again THEN nothing is applied, no day is written, and the newer version stays."""
    lake = Lake(tmp_path)
    older = [change(item("a", DAY, DAY, 20), WRITE), change(item("b", DAY + 1, DAY, 21), WRITE)]
    lake.merge(older)
    lake.merge([change(item("a", DAY, DAY, 30), WRITE + 3_600_000_000)])
    before = lake.rows()

    again = lake.merge(older)

    assert (again.applied, again.superseded, again.days) == (0, 2, ())
    assert lake.rows() == before
    assert before[("a", DAY)][0] == 30.0


def test_two_windows_touching_one_day_merge_into_it(tmp_path):
    """GIVEN two windows that each write readings of the same reading day WHEN merged one after
    the other THEN the day holds the readings of both, once each."""
    lake = Lake(tmp_path)
    lake.merge([change(item("a", DAY, DAY, 20), WRITE)])
    lake.merge([change(item("b", DAY + 60, DAY, 21), WRITE + 3_600_000_000)])

    assert sorted(lake.rows()) == [("a", DAY), ("b", DAY + 60)]
    assert len(list((lake.files / "dt=2023-11-16").glob("*.parquet"))) == 1


def test_a_delete_in_the_table_keeps_the_reading_in_the_lake(tmp_path):
    """GIVEN a reading in the lake WHEN the table deletes it (TTL expiry) THEN the lake keeps it
    as it was, and the delete changes nothing."""
    lake = Lake(tmp_path)
    stored = item("a", DAY, DAY, 20)
    lake.merge([change(stored, WRITE)])

    result = lake.merge([change(None, WRITE + 60_000_000, old=stored)])

    assert (result.incoming, result.applied, result.days) == (0, 0, ())
    assert lake.rows()[("a", DAY)] == (20.0, _at(WRITE), "2023-11-16")


def test_readings_of_2001_and_of_last_year_land_in_their_own_days(tmp_path):
    """GIVEN readings dated 2001 and a year ago in one window WHEN merged THEN each reading day
    is a partition of its own, whatever the calendar of the run."""
    lake = Lake(tmp_path)
    last_year = 1732968000  # 2024-11-30T12:00:00Z
    lake.merge(
        [change(item("a", Y2001, DAY, 1), WRITE), change(item("b", last_year, DAY, 2), WRITE)]
    )

    assert sorted(p.name for p in lake.files.iterdir()) == ["dt=2001-01-01", "dt=2024-11-30"]


def test_a_full_export_changes_only_what_differs_and_keeps_write_times_of_the_rest(tmp_path):
    """GIVEN a lake merged from incremental windows WHEN a full export of the table (a rebuild)
    is merged THEN a key whose content is the same keeps its version and write time, a key that
    differs takes the export's, and a key the table no longer holds stays."""
    lake = Lake(tmp_path)
    lake.merge(
        [
            change(item("same", DAY, DAY, 20), WRITE),
            change(item("differs", DAY + 1, DAY, 21), WRITE),
            change(item("expired", DAY + 2, DAY, 22), WRITE),
        ]
    )
    export_time = datetime(2026, 12, 1, tzinfo=UTC)

    result = lake.merge(
        [{"Item": item("same", DAY, DAY, 20)}, {"Item": item("differs", DAY + 1, DAY, 99)}],
        export_time,
    )

    rows = lake.rows()
    assert (result.applied, result.superseded) == (1, 1)
    assert rows[("same", DAY)][1] == _at(WRITE)
    assert rows[("differs", DAY + 1)][:2] == (99.0, export_time.replace(tzinfo=None))
    assert ("expired", DAY + 2) in rows


def test_merging_the_same_window_twice_changes_nothing_the_second_time(tmp_path):
    """GIVEN a window merged WHEN the very same window is merged again THEN nothing is applied
    and no day is written."""
    lake = Lake(tmp_path)
    window = [change(item("a", DAY, DAY, 20), WRITE), change(item("a", DAY, DAY, 21), WRITE + 1)]
    first = lake.merge(window)

    second = lake.merge(window)

    assert (first.incoming, first.applied) == (1, 1)  # one version per key: the latest
    assert (second.applied, second.days) == (0, ())
    assert lake.rows()[("a", DAY)][0] == 21.0


def test_a_new_payload_field_is_appended_so_older_files_columns_lead_newer_ones(tmp_path):
    """GIVEN a day written without extra fields and later a day with `pressure` and then one with
    `battery` WHEN merged THEN every file's columns are the first columns of the newest file's:
    the fixed columns, then the extras in the order they appeared (what one Redshift COPY with
    FILLRECORD needs)."""
    lake = Lake(tmp_path)
    lake.merge([change(item("a", DAY, DAY, 20), WRITE)])
    lake.merge([change(item("b", Y2001, DAY, 5, pressure={"N": "1000"}), WRITE)])
    lake.merge([change(item("c", DAY - 86400, DAY, 7, battery={"N": "3.7"}), WRITE)])

    schemas = {
        p.parent.name: pq.read_schema(p).names for p in sorted(lake.files.rglob("*.parquet"))
    }
    newest = schemas["dt=2023-11-15"]
    assert newest == [*ws.READINGS.file_columns, "pressure", "battery"]
    assert all(names == newest[: len(names)] for names in schemas.values())
    assert lake.extras == {"pressure": "double", "battery": "double"}
