"""`dbt build --target local` on a DuckDB warehouse holding hand-made raw readings.

One build (and one incremental rebuild after late readings arrive) per module;
the tests check mart values against numbers worked out by hand from
readings_fixture.py. The late readings are written into `raw.*` as a load
writes them (a key's row replaced), and the rebuild is told their reading hours
and days the way the batch pipeline tells it: DBT_REBUILD_HOURS / _DAYS.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline_platform import warehouse_schema
from tests.dbt.dbt_project_runner import create_raw_tables, insert_rows, replace_rows, run_dbt
from tests.dbt.readings_fixture import LATE_READINGS, QUARANTINED, READINGS, RULE_ERRORS

# Set on one untouched hour before the incremental run: it survives only if
# that run rewrote just the hours that received late readings.
UNTOUCHED_MARKER = -1


@dataclass(frozen=True)
class Warehouse:
    """The warehouse after the first build, and after the incremental rebuild."""

    first_build: Path
    incremental_build: Path
    manifest: dict


def query(path: Path, sql: str) -> list[dict[str, object]]:
    """Rows of `sql` on the DuckDB file at `path`, as dicts."""
    # not read-only: dbt-duckdb, run in-process, keeps the file open read-write
    # and DuckDB refuses a second handle with a different configuration
    with duckdb.connect(str(path)) as connection:
        cursor = connection.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """GIVEN raw readings and quarantined records loaded into a fresh DuckDB file,
    WHEN dbt builds the project, late readings arrive and dbt builds again."""
    work = tmp_path_factory.mktemp("dbt_local")
    path = work / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        create_raw_tables(connection, extra_columns=["pressure"])
        insert_rows(connection, warehouse_schema.READINGS_TABLE, READINGS)
        insert_rows(connection, warehouse_schema.QUARANTINE_TABLE, QUARANTINED)
        insert_rows(connection, warehouse_schema.RULE_ERRORS_TABLE, RULE_ERRORS)

    with pytest.MonkeyPatch.context() as env:
        env.setenv("WAREHOUSE_PATH", str(path))
        run_dbt(["build", "--target", "local"], work / "first")
        # keep the first build's state: flush the write-ahead log into the file,
        # and keep the file name, which DuckDB views use as their catalog name
        with duckdb.connect(str(path)) as connection:
            connection.execute("checkpoint")
        first_build = work / "after_first_build" / path.name
        first_build.parent.mkdir()
        shutil.copy(path, first_build)

        with duckdb.connect(str(path)) as connection:
            connection.execute(
                "update analytics.fct_device_hourly set valid_reading_count = ? "
                "where device_id = 'dev-a' and reading_hour = '2024-03-01 09:00:00'",
                [UNTOUCHED_MARKER],
            )
            replace_rows(connection, warehouse_schema.READINGS, LATE_READINGS)
        # the reading hours and days the late writes changed, as the load queues them
        hours = sorted({f"{r['reading_at']:%Y-%m-%d %H}:00:00" for r in LATE_READINGS})
        days = sorted({f"{r['dt']}" for r in LATE_READINGS})
        env.setenv("DBT_REBUILD_HOURS", json.dumps(hours))
        env.setenv("DBT_REBUILD_DAYS", json.dumps(days))
        run_dbt(["build", "--target", "local"], work / "second")

    manifest = json.loads((work / "first" / "target" / "manifest.json").read_text())
    return Warehouse(first_build=first_build, incremental_build=path, manifest=manifest)


def hourly(path: Path) -> dict[tuple[object, object], dict[str, object]]:
    rows = query(path, "select * from analytics.fct_device_hourly")
    return {(r["device_id"], r["reading_hour"]): r for r in rows}


def test_staging_has_one_row_per_reading_with_its_latest_write(warehouse: Warehouse) -> None:
    # THEN each (device, timestamp) appears once, carrying the values the load kept
    rows = query(
        warehouse.first_build,
        "select device_id, reading_at, temperature, humidity, sequence_number, pressure "
        "from staging.stg_iot__sensor_readings",
    )
    assert len(rows) == 14
    by_key = {(r["device_id"], r["reading_at"]): r for r in rows}
    reloaded = by_key[("dev-a", datetime(2024, 3, 1, 10, 15))]
    assert (reloaded["temperature"], reloaded["humidity"]) == (22.0, 40.0)
    assert reloaded["sequence_number"] == "a6"
    # AND extra payload fields pass through as columns
    assert by_key[("dev-a", datetime(2024, 3, 1, 9, 0))]["pressure"] == 1013.0


def test_hourly_statistics_use_valid_values_and_count_problems(warehouse: Warehouse) -> None:
    facts = hourly(warehouse.first_build)
    assert len(facts) == 5

    # THEN dev-a 10:00: 4 readings (one reloaded, one alert re-delivered), the
    # missing temperature left out of the temperature statistics only
    h10 = facts[("dev-a", datetime(2024, 3, 1, 10))]
    assert (h10["reading_count"], h10["valid_reading_count"]) == (4, 3)
    assert (h10["min_temperature"], h10["max_temperature"]) == (20.0, 36.0)
    assert h10["avg_temperature"] == pytest.approx(26.0)
    assert (h10["min_humidity"], h10["max_humidity"]) == (25.0, 50.0)
    assert h10["avg_humidity"] == pytest.approx(36.25)
    assert (h10["high_temperature_alert_count"], h10["low_humidity_alert_count"]) == (1, 0)
    assert (h10["missing_temperature_count"], h10["missing_reading_count"]) == (1, 1)
    assert h10["out_of_range_reading_count"] == 0

    # THEN dev-a 11:00: the 150 C reading is counted out of range, not averaged;
    # the coerced reading is valid
    h11 = facts[("dev-a", datetime(2024, 3, 1, 11))]
    assert (h11["reading_count"], h11["valid_reading_count"]) == (3, 2)
    assert (h11["min_temperature"], h11["max_temperature"]) == (24.0, 40.0)
    assert h11["avg_temperature"] == pytest.approx(32.0)
    assert h11["avg_humidity"] == pytest.approx((40.0 + 10.0 + 15.0) / 3)
    assert (h11["high_temperature_alert_count"], h11["low_humidity_alert_count"]) == (1, 2)
    assert h11["alerting_reading_count"] == 2
    assert (h11["temperature_out_of_range_count"], h11["out_of_range_reading_count"]) == (1, 1)

    # THEN dev-b 03:00: humidity 150 % is left out of the humidity statistics
    b03 = facts[("dev-b", datetime(2024, 3, 1, 3))]
    assert (b03["min_humidity"], b03["avg_humidity"], b03["max_humidity"]) == (60.0, 60.0, 60.0)
    assert b03["avg_temperature"] == pytest.approx(18.5)
    assert b03["humidity_out_of_range_count"] == 1

    # THEN dev-c 11:00: a reading missing both values counts once as missing
    c11 = facts[("dev-c", datetime(2024, 3, 1, 11))]
    assert (c11["missing_temperature_count"], c11["missing_humidity_count"]) == (1, 1)
    assert c11["missing_reading_count"] == 1
    assert (c11["avg_temperature"], c11["avg_humidity"]) == (21.0, 55.0)


def test_alerts_have_one_row_per_code_per_reading(warehouse: Warehouse) -> None:
    rows = query(warehouse.first_build, "select * from analytics.fct_alerts")
    # THEN a two-code reading gives two rows and a re-delivered alert gives one
    assert sorted((r["device_id"], r["alerted_at"], r["alert_code"]) for r in rows) == [
        ("dev-a", datetime(2024, 3, 1, 10, 30), "HIGH_TEMPERATURE"),
        ("dev-a", datetime(2024, 3, 1, 11, 30), "LOW_HUMIDITY"),
        ("dev-a", datetime(2024, 3, 1, 11, 45), "HIGH_TEMPERATURE"),
        ("dev-a", datetime(2024, 3, 1, 11, 45), "LOW_HUMIDITY"),
    ]
    assert len({r["alert_id"] for r in rows}) == 4


def test_devices_get_health_from_recent_quality_and_silence(warehouse: Warehouse) -> None:
    rows = query(warehouse.first_build, "select * from analytics.dim_devices")
    devices = {r["device_id"]: r for r in rows}
    assert set(devices) == {"dev-a", "dev-b", "dev-c"}
    # THEN health is judged at the latest reading in the data
    assert {d["as_of"] for d in devices.values()} == {datetime(2024, 3, 1, 11, 45)}

    a = devices["dev-a"]
    assert (a["first_seen_at"], a["last_seen_at"]) == (
        datetime(2024, 3, 1, 9, 0),
        datetime(2024, 3, 1, 11, 45),
    )
    assert a["reading_count"] == 10
    assert (a["latest_temperature"], a["latest_humidity"]) == (40.0, 15.0)
    assert a["latest_alerts"] == "HIGH_TEMPERATURE,LOW_HUMIDITY"
    # 2 invalid of 10 recent readings is not above the 0.2 threshold
    assert (a["recent_invalid_reading_count"], a["recent_invalid_share"]) == (2, 0.2)
    assert a["health_status"] == "ok"

    assert devices["dev-b"]["health_status"] == "stale"
    assert devices["dev-c"]["recent_invalid_share"] == 0.5
    assert devices["dev-c"]["health_status"] == "faulty"


def test_staging_lists_the_rule_errors_beside_the_quarantined_records(
    warehouse: Warehouse,
) -> None:
    # THEN every message not stored is one row of staging: three quarantined by the
    # function, one kept by the topic rule's error action with its payload and topic
    rows = query(
        warehouse.first_build,
        "select record_id, record_source, reason, topic, payload_base64, attributed_device_id "
        "from staging.stg_iot__quarantined_records order by record_source, record_id",
    )
    assert [(r["record_source"], r["reason"]) for r in rows] == [
        ("stream_processor", "INVALID_TEMPERATURE"),
        ("stream_processor", "INVALID_JSON"),
        ("stream_processor", "NOT_AN_OBJECT"),
        ("topic_rule", "TOPIC_RULE_ERROR"),
    ]
    rule_error = rows[-1]
    assert rule_error["record_id"] == RULE_ERRORS[0]["error_id"]
    assert rule_error["topic"] == "iot/sensors"
    assert rule_error["payload_base64"] == RULE_ERRORS[0]["payload_base64"]
    assert rule_error["attributed_device_id"] is None


def test_daily_health_shares_include_quarantined_records(warehouse: Warehouse) -> None:
    rows = query(warehouse.first_build, "select * from analytics.device_health_daily")
    day = date(2024, 3, 1)
    shares = {
        r["device_id"]: (
            r["reading_count"],
            r["quarantined_count"],
            r["missing_share"],
            r["out_of_range_share"],
            r["quarantined_share"],
        )
        for r in rows
        if r["health_date"] == day
    }
    assert len(rows) == 4
    assert shares == {
        "dev-a": (10, 0, 0.1, 0.1, 0.0),
        "dev-b": (2, 0, 0.0, 0.5, 0.0),
        # q1 by device id, q2 (quarantined twice) by partition key
        "dev-c": (2, 2, 0.5, 0.0, 0.5),
        # known only from quarantine
        "dev-d": (0, 1, None, None, 1.0),
    }


def test_every_model_column_is_documented(warehouse: Warehouse) -> None:
    # THEN each column analysts see has a description in the model's YAML
    # (extra payload fields are passed through as they come and cannot be)
    nodes = [n for n in warehouse.manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(nodes) == 6
    for node in nodes:
        built = query(
            warehouse.first_build,
            "select column_name from information_schema.columns "
            f"where table_schema = '{node['schema']}' and table_name = '{node['name']}'",
        )
        built_columns = {r["column_name"] for r in built} - {"pressure"}
        documented = {
            name for name, column in node["columns"].items() if column["description"].strip()
        }
        assert built_columns == documented, node["name"]
        assert node["description"].strip(), node["name"]


def test_incremental_run_corrects_late_hours_without_duplicates(warehouse: Warehouse) -> None:
    before = hourly(warehouse.first_build)
    after = hourly(warehouse.incremental_build)
    # THEN no hour appears twice and no hour is lost
    assert set(after) == set(before)
    assert len(query(warehouse.incremental_build, "select * from analytics.fct_device_hourly")) == 5

    # AND the late 10:50 reading joins dev-a's 10:00 hour; the 10:00 reading
    # written again still counts once
    h10 = after[("dev-a", datetime(2024, 3, 1, 10))]
    assert (h10["reading_count"], h10["valid_reading_count"]) == (5, 4)
    assert h10["avg_temperature"] == pytest.approx((20.0 + 22.0 + 36.0 + 30.0) / 4)
    assert h10["avg_humidity"] == pytest.approx(36.0)
    assert h10["last_ingested_at"] == datetime(2024, 3, 2, 8, 0)

    # AND the late alert lands in dev-b's 03:00 hour
    b03 = after[("dev-b", datetime(2024, 3, 1, 3))]
    assert (b03["reading_count"], b03["high_temperature_alert_count"]) == (3, 1)

    # AND hours without late readings were left as they were, not rebuilt
    untouched = after[("dev-a", datetime(2024, 3, 1, 9))]
    assert untouched["valid_reading_count"] == UNTOUCHED_MARKER
    assert after[("dev-a", datetime(2024, 3, 1, 11))] == before[("dev-a", datetime(2024, 3, 1, 11))]

    alerts = query(warehouse.incremental_build, "select * from analytics.fct_alerts")
    assert len(alerts) == 5
