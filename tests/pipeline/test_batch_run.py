"""The batch side end to end on the emulator: export -> lake -> crawl -> warehouse -> dbt marts."""

from __future__ import annotations

import duckdb
import pytest

from platform_tools.batch_runs import materialize
from stream_processor import contract

DAY = "2023-11-16"
# The seed's stored readings (README "Testing"), all on 2023-11-16 UTC.
SEED = [
    ("sensor-101", 1700100000, {"temperature": 22, "humidity": 55}),
    ("sensor-102", 1700100500, {"temperature": 75, "humidity": 40}),
    ("sensor-103", 1700101000, {"temperature": 21, "humidity": 10}),
    ("sensor-104", 1700101500, {"temperature": 30}),
    ("sensor-105", 1700103000, {"temperature": 150, "humidity": 30}),
    ("sensor-106", 1700103500, {"temperature": -10, "humidity": -5}),
    ("sensor-107", 1700104000, {"temperature": 25, "humidity": 65, "pressure": 1012}),
]


def _query(deployment, sql: str) -> list[tuple]:
    with duckdb.connect(str(deployment.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def first_run(deployment):
    """GIVEN the seed's readings stored and one quarantined record, WHEN the day is materialised."""
    for n, (device, ts, fields) in enumerate(SEED):
        deployment.put_reading(device, ts, n, **fields)
    deployment.put_quarantined(DAY, 1, contract.INVALID_JSON, 1700102000.5)
    return materialize(partition=DAY)


def test_whole_graph_lands_readings_in_warehouse_and_marts(deployment, first_run):
    """THEN every stage reports the seed's rows and the warehouse and marts hold them."""
    assets = first_run["assets"]
    assert assets["s3/lake/sensor_readings"]["rows"] == len(SEED)
    assert assets["warehouse/raw_sensor_readings"]["rows"] == len(SEED)
    assert assets["warehouse/raw_quarantined_records"]["rows"] == 1
    assert all(first_run["checks"].values()), first_run["checks"]
    # dbt's tests of its sources are checks of the warehouse tables they read
    assert (
        "warehouse/raw_sensor_readings:source_not_null_iot_sensor_readings_device_id"
        in (first_run["checks"])
    )
    rows = _query(
        deployment,
        "select device_id, temperature, humidity, alerts, cast(dt as varchar) "
        "from raw.sensor_readings order by device_id",
    )
    assert rows[1] == ("sensor-102", 75.0, 40.0, contract.HIGH_TEMPERATURE, DAY)
    assert rows[3] == ("sensor-104", 30.0, None, "", DAY)
    (reason,) = _query(deployment, "select reason from raw.quarantined_records")[0]
    assert reason == contract.INVALID_JSON
    devices = _query(deployment, "select count(*) from analytics.dim_devices")[0][0]
    assert devices == len(SEED)
    alerts = _query(deployment, "select count(*) from analytics.fct_alerts")
    assert alerts[0][0] >= 2  # sensor-102 high temperature, sensor-103 low humidity


def test_rematerialising_a_partition_is_idempotent_and_takes_late_readings(deployment, first_run):
    """WHEN the day runs again, and again after a late reading, THEN rows are not duplicated."""
    again = materialize(partition=DAY)
    assert again["assets"]["warehouse/raw_sensor_readings"]["rows"] == len(SEED)
    deployment.put_reading("sensor-108", 1700150000, 99, temperature=19.5, humidity=44)
    late = materialize(partition=DAY)
    assert late["assets"]["warehouse/raw_sensor_readings"]["rows"] == len(SEED) + 1
    keys = _query(
        deployment,
        "select count(*), count(distinct (device_id, reading_epoch)) from raw.sensor_readings",
    )[0]
    assert keys == (len(SEED) + 1, len(SEED) + 1)
    assert all(late["checks"].values()), late["checks"]


def test_new_payload_field_flows_to_catalog_warehouse_and_dbt_staging(deployment, first_run):
    """GIVEN a device whose readings gain `pressure` half way through the next day,
    WHEN that day runs, THEN the catalog, the warehouse and dbt staging carry `pressure`."""
    deployment.put_reading("sensor-201", 1700200000, 201, temperature=20, humidity=50)
    deployment.put_reading(
        "sensor-201", 1700203600, 202, temperature=21, humidity=51, pressure=1009
    )

    summary = materialize(partition="2023-11-17")

    assert summary["assets"]["warehouse/raw_sensor_readings"]["rows"] == 2
    columns = deployment.client("glue").get_table(
        DatabaseName=deployment.settings.glue_database, Name="sensor_readings"
    )["Table"]["StorageDescriptor"]["Columns"]
    assert "pressure" in {c["Name"] for c in columns}
    values = _query(
        deployment,
        "select device_id, pressure from staging.stg_iot__sensor_readings "
        "where device_id in ('sensor-201', 'sensor-107') order by reading_epoch",
    )
    assert values == [("sensor-107", 1012.0), ("sensor-201", None), ("sensor-201", 1009.0)]
