"""A warehouse that missed a load catches up from the lake's change sets, and a load costs what
the lake changed, not the size of the days it touched.

One deployment, three runs an hour apart (time-machine, as in `test_batch_run`):
1. a day of readings, a plain `materialize`: the first, full run;
2. an update of one reading and a new reading on that day, while the warehouse cannot be
   reached (DuckDB: another process holds its file, a notebook left open; Redshift: the
   cluster turns connections away): the lake takes the changes, the warehouse load fails;
3. a second update of the same reading, with a field no reading had (`battery`), then a plain
   `materialize`;
4. an update of another reading of the day, the warehouse unreachable again, and the change
   set that run left rewritten as an earlier version of the pipeline wrote change sets (keys
   only);
5. a plain `materialize`.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime

import duckdb
import pytest
import time_machine

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.lake.run_context import change_set_key, state_store
from pipeline_platform.resources.by_environment import cloud_resource
from platform_tools.batch_runs import RunFailed, materialize
from tests.support.warehouses import KINDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=KINDS)
def warehouse_kind(request: pytest.FixtureRequest) -> str:
    """GIVEN each warehouse in turn: DuckDB, and Redshift's SQL on PostgreSQL."""
    return request.param


DAY_START = 1700092800  # 2023-11-16T00:00:00Z
READINGS = 40
HOUR = 3600
RAW = "warehouse/raw_sensor_readings"


def _settle() -> None:
    """Let the export margin pass (see `test_batch_run._settle`)."""
    time.sleep(1.2)


@pytest.fixture(scope="module")
def runs(deployment):
    """GIVEN the three runs of the module docstring."""
    for n in range(READINGS):
        deployment.put_reading(
            f"sensor-{n % 4}", DAY_START + 60 * n, n, temperature=20, humidity=50
        )
    _settle()
    start = time.time()
    found = {"first": materialize(warehouse=deployment.warehouse.resource)}

    with time_machine.travel(start + HOUR, tick=True):
        deployment.put_reading("sensor-0", DAY_START, 100, temperature=31, humidity=50)
        deployment.put_reading("sensor-9", DAY_START + 30, 101, temperature=22, humidity=50)
        _settle()
        with deployment.warehouse.unreachable(), pytest.raises(RunFailed) as failed:
            materialize(warehouse=deployment.warehouse.resource)
        found["failed"] = str(failed.value)

    with time_machine.travel(start + 2 * HOUR, tick=True):
        crawls = {"before_caught_up": deployment.last_crawl()}
        deployment.put_reading("sensor-0", DAY_START, 102, temperature=42, humidity=50, battery=3.7)
        _settle()
        found["caught_up"] = materialize(warehouse=deployment.warehouse.resource)
        crawls["caught_up"] = deployment.last_crawl()

    with time_machine.travel(start + 3 * HOUR, tick=True):
        deployment.put_reading("sensor-1", DAY_START + 60, 103, temperature=33, humidity=50)
        _settle()
        with deployment.warehouse.unreachable(), pytest.raises(RunFailed):
            materialize(warehouse=deployment.warehouse.resource)
        _keep_only_keys(deployment)

    with time_machine.travel(start + 4 * HOUR, tick=True):
        _settle()
        found["from_days"] = materialize(warehouse=deployment.warehouse.resource)
        crawls["from_days"] = deployment.last_crawl()
    found["crawls"] = crawls
    return found


def _keep_only_keys(deployment) -> None:
    """Rewrite the readings' newest change set as change sets were once written: keys, write
    time, day and hour, no values."""
    cloud = cloud_resource()
    state = state_store(cloud).load(ws.READINGS_TABLE)[0]
    key = change_set_key(ws.READINGS_TABLE, state.version)
    s3, bucket = deployment.client("s3"), deployment.settings.lake_bucket
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/changes.parquet"
        s3.download_file(bucket, key, path)
        duckdb.execute(
            f"copy (select device_id, reading_epoch, written_at, cast(reading_at as date) as dt, "
            f"date_trunc('hour', reading_at) as reading_hour from '{path}') "
            f"to '{tmp}/keys.parquet' (format parquet)"
        )
        s3.upload_file(f"{tmp}/keys.parquet", bucket, key)


def _query(deployment, sql: str) -> list[tuple]:
    return deployment.warehouse.query(sql)


def test_the_run_after_a_failed_load_merges_every_lake_version_it_missed(deployment, runs):
    """THEN the warehouse step of run 2 failed, and run 3 loaded both lake versions: the reading
    updated twice holds its newest value once, the new reading is there, and every check of the
    run (changes reached the warehouse, lake and warehouse days agree) passed but the catalog's
    warning that its columns changed (`battery` was added)."""
    assert "raw_sensor_readings" in runs["failed"]
    caught_up = runs["caught_up"]
    checks = dict(caught_up["checks"])
    assert checks.pop("glue/sensor_readings:schema_unchanged") is False
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}
    assert _query(
        deployment,
        f"select temperature from raw.sensor_readings where device_id = 'sensor-0' "
        f"and reading_at = '{datetime.fromtimestamp(DAY_START, UTC):%Y-%m-%d %H:%M:%S}'",
    ) == [(42.0,)]
    assert _query(deployment, "select count(*) from raw.sensor_readings") == [(READINGS + 1,)]
    # Two keys changed over the two lake versions: the update (twice) and the new reading.
    assert caught_up["assets"][RAW]["counts"]["rows_changed"] == 2


def test_a_load_stages_the_changed_rows_not_the_days_they_touched(deployment, runs):
    """THEN run 3's load staged the three changed rows of the two change sets, though the day
    they fall on holds 41 readings, and dbt's marts count the day's readings once each."""
    counts = runs["caught_up"]["assets"][RAW]["counts"]
    assert counts["rows_staged"] == 3
    assert _query(
        deployment,
        "select sum(reading_count) from analytics.device_health_daily "
        "where health_date = '2023-11-16'",
    ) == [(READINGS + 1,)]


def test_change_sets_of_keys_only_are_loaded_from_the_days_they_touched(deployment, runs):
    """THEN run 5, finding a pending change set without the rows' values, loaded the day it
    touched whole instead (all 41 readings staged) rather than loading empty values: the
    update is in the warehouse and every check passed."""
    from_days = runs["from_days"]
    assert all(from_days["checks"].values()), {
        k: v for k, v in from_days["checks"].items() if not v
    }
    assert from_days["assets"][RAW]["counts"]["rows_staged"] == READINGS + 1
    assert _query(
        deployment,
        "select temperature from raw.sensor_readings where device_id = 'sensor-1' "
        f"and reading_at = '{datetime.fromtimestamp(DAY_START + 60, UTC):%Y-%m-%d %H:%M:%S}'",
    ) == [(33.0,)]


def test_a_new_field_on_a_day_the_catalog_has_is_crawled_and_nothing_else_is(deployment, runs):
    """THEN run 3 crawled (its reading brought `battery`, a column the catalog lacked, on a day
    it had) and `battery` is a catalog column; runs 4 and 5, with nothing new for the catalog,
    did not crawl."""
    crawls = runs["crawls"]
    assert crawls["caught_up"] != crawls["before_caught_up"]
    assert crawls["from_days"] == crawls["caught_up"]
    columns = deployment.client("glue").get_table(
        DatabaseName=deployment.settings.glue_database, Name="sensor_readings"
    )["Table"]["StorageDescriptor"]["Columns"]
    assert "battery" in {c["Name"] for c in columns}
