"""A warehouse load on its own, on DuckDB and on Redshift's SQL on PostgreSQL: change sets in
the lake bucket, loaded by the warehouse resource the pipeline uses.

What a load promises whichever the warehouse: the files' columns are taken in the lake's
order, a file written before the lake gained a column loads with that column null, and a
load that fails part-way through its merge changes nothing (rows, versions loaded, dbt's
queue), so the next load starts from where the last good one stopped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.resources.by_environment import cloud_resource
from pipeline_platform.resources.load_sql import table_columns
from pipeline_platform.resources.warehouse_load import LakeFile, LoadSpec
from tests.support.warehouses import KINDS

pytestmark = pytest.mark.integration

LAKE_ID = "lake-under-test"


@pytest.fixture(scope="module", params=KINDS)
def warehouse_kind(request: pytest.FixtureRequest) -> str:
    """GIVEN each warehouse in turn: DuckDB, and Redshift's SQL on PostgreSQL."""
    return request.param


def _change_set(deployment, version: int, rows: list[str], extras: dict[str, str]) -> LakeFile:
    """A change set of readings in the lake bucket, written as the lake writes them: the
    fixed columns, then the extra ones, in that order. `rows` are SQL value tuples."""
    spec = _spec(deployment, version, (), extras)
    columns = table_columns(spec)
    key = f"pipeline/changes/test/v{version:08d}.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "changes.parquet"
        casts = {c.name: c.sql_type("duckdb") for c in ws.READINGS.columns} | {
            name: ws.Column(name, kind, "").sql_type("duckdb") for name, kind in extras.items()
        }
        select = ", ".join(f'cast("{c}" as {casts[c]}) as "{c}"' for c in columns)
        names = ", ".join(f'"{c}"' for c in columns)
        duckdb.execute(
            f"copy (select {select} from (values {', '.join(rows)}) as v({names})) "
            f"to '{path}' (format parquet)"
        )
        deployment.client("s3").upload_file(str(path), deployment.settings.lake_bucket, key)
        return LakeFile(key, path.stat().st_size)


def _spec(deployment, version: int, files, extras: dict[str, str]) -> LoadSpec:
    return LoadSpec(
        table=ws.READINGS,
        bucket=deployment.settings.lake_bucket,
        lake_prefix="lake/sensor_readings/",
        files=tuple(files),
        lake_version=version,
        manifest_key=f"pipeline/manifests/test/v{version:08d}.manifest",
        lake_id=LAKE_ID,
        change_sets=True,
        extra_columns=extras,
    )


def _reading(device: str, epoch: int, temperature: str, extra: str | None = None) -> str:
    at = f"make_timestamp({epoch * 1_000_000})"
    values = [f"'{device}'", str(epoch), at, temperature, "50.0", "''", "''", "'seq'", at, at]
    return "(" + ", ".join(values + ([extra] if extra is not None else [])) + ")"


@pytest.fixture(scope="module")
def loads(deployment):
    """GIVEN a first change set of two readings (before the lake had `pressure`) and a second
    with `pressure`, loaded in turn, WHEN a third change set updates a reading and holds a
    row with no reading time (which `raw.sensor_readings` refuses) is loaded."""
    warehouse, cloud = deployment.warehouse.resource, cloud_resource()
    first = _change_set(
        deployment,
        1,
        [_reading("sensor-1", 1700000000, "20.5"), _reading("sensor-2", 1700000060, "21.0")],
        {},
    )
    found = {"first": warehouse.load(_spec(deployment, 1, [first], {}), cloud)}
    extras = {"pressure": "double"}
    second = _change_set(
        deployment, 2, [_reading("sensor-3", 1700000120, "22.0", "1009.5")], extras
    )
    found["second"] = warehouse.load(_spec(deployment, 2, [second], extras), cloud)
    found["before_failure"] = deployment.warehouse.query(
        "select device_id, temperature, pressure from raw.sensor_readings order by 1"
    )
    found["pending_before_failure"] = warehouse.pending()
    broken = _change_set(
        deployment,
        3,
        [
            _reading("sensor-1", 1700000000, "99.0", "1000.0"),
            "('sensor-4', 1700000180, null, 20.0, 50.0, '', '', 'seq', null, null, null)",
        ],
        extras,
    )
    with pytest.raises(Exception) as failed:
        warehouse.load(_spec(deployment, 3, [broken], extras), cloud)
    found["failure"] = failed.value
    return found


def test_files_load_by_the_lake_column_order_and_an_older_file_fills_the_new_column(
    deployment, loads
):
    """THEN the first load added two readings, the second added `pressure` and its reading;
    the readings of the file written before `pressure` existed have it null."""
    assert (loads["first"].changed_rows, loads["second"].changed_rows) == (2, 1)
    assert loads["second"].added_columns == ("pressure",)
    assert loads["before_failure"] == [
        ("sensor-1", 20.5, None),
        ("sensor-2", 21.0, None),
        ("sensor-3", 22.0, 1009.5),
    ]


def test_a_load_that_fails_in_its_merge_changes_nothing(deployment, loads):
    """THEN the failed load names the refused column, and the table, the lake version loaded
    and dbt's queue are as the last good load left them: the update was not half applied."""
    assert "reading_at" in str(loads["failure"])
    assert (
        deployment.warehouse.query(
            "select device_id, temperature, pressure from raw.sensor_readings order by 1"
        )
        == loads["before_failure"]
    )
    assert deployment.warehouse.resource.loaded("sensor_readings", LAKE_ID).version == 2
    assert deployment.warehouse.resource.pending() == loads["pending_before_failure"]
