"""The batch side end to end on the emulator, by write time: export -> lake -> crawl -> warehouse
-> dbt marts, with the clock moved forward between runs (time-machine) so each run's window is
one AWS accepts for an incremental export.

The runs of the module build on each other:
1. the seed's readings, one of 2001 and one of last year, a quarantined record and a rule
   error, then a plain `materialize`: the first run on an empty lake, one full export;
2. an hour later, a reading for three days ago, an update of a seed key, a delete and a
   reading with a new field, then a plain `materialize`: an incremental catch-up;
3. an hour later, a newer update of the same key and another reading of that late day;
4. the window of run 2 run again by name, after the newer run 3.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from pipeline_platform.defs.partitions import hour_key
from platform_tools.batch_runs import materialize
from stream_processor import contract
from tests.support.warehouses import KINDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=KINDS)
def warehouse_kind(request: pytest.FixtureRequest) -> str:
    """GIVEN each warehouse in turn: DuckDB, and Redshift's SQL on PostgreSQL."""
    return request.param


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
Y2001 = 978310800  # 2001-01-01T01:00:00Z
RULE_ERROR = {
    "ruleName": "rule_sensors",
    "topic": "iot/sensors",
    "cloudwatchTraceId": "t",
    "clientId": "n/a",
    "base64OriginalPayload": "SW52YWxpZCBKU09OIERhdGE=",
    "failures": [
        {
            "failedAction": "KinesisAction",
            "failedResource": "kinesis-stream",
            "errorMessage": "Failed to put record in Kinesis stream. PartitionKey: ''",
        }
    ],
}
HOUR = 3600


def _query(deployment, sql: str) -> list[tuple]:
    return deployment.warehouse.query(sql)


def _lake_objects(deployment, prefix: str) -> dict[str, str]:
    """Key -> ETag of every lake object under `prefix`."""
    listed = deployment.client("s3").list_objects_v2(
        Bucket=deployment.settings.lake_bucket, Prefix=prefix
    )
    return {o["Key"]: o["ETag"] for o in listed.get("Contents", [])}


def _settle() -> None:
    """Let the export margin pass: a run exports writes up to a second before it starts (a
    clock a little ahead of AWS's must not ask for the future), later ones go to the next run."""
    time.sleep(1.2)


@pytest.fixture(scope="module")
def runs(deployment):
    """GIVEN the four steps of the module docstring, each one run of `materialize`."""
    start = time.time()
    year_ago = int(start) - 365 * 86400
    three_days_ago = int(start) - 3 * 86400
    for n, (device, ts, fields) in enumerate(SEED):
        deployment.put_reading(device, ts, n, **fields)
    deployment.put_reading("sensor-201", Y2001, 20, temperature=19, humidity=50)
    deployment.put_reading("sensor-202", year_ago, 21, temperature=18, humidity=51)
    deployment.put_quarantined(DAY, 1, contract.INVALID_JSON, 1700102000.5)
    deployment.client("s3").put_object(
        Bucket=deployment.settings.quarantine_bucket,
        Key=f"{deployment.settings.rule_errors_prefix}1700102000000-a1.json",
        Body=json.dumps(RULE_ERROR).encode(),
    )
    _settle()
    found = {
        "first": materialize(warehouse=deployment.warehouse.resource),
        "three_days_ago": three_days_ago,
        "year_ago": year_ago,
    }
    crawls = {"first": deployment.last_crawl()}

    with time_machine.travel(start + HOUR, tick=True):
        deployment.put_reading("sensor-301", three_days_ago, 30, temperature=23, humidity=40)
        deployment.put_reading("sensor-101", 1700100000, 31, temperature=55, humidity=50)
        deployment.delete_reading("sensor-106", 1700103500)
        deployment.put_reading(
            "sensor-302", three_days_ago + 60, 32, temperature=21, humidity=51, pressure=1009
        )
        _settle()
        found["late"] = materialize(warehouse=deployment.warehouse.resource)
        found["late_window"] = hour_key(datetime.now(UTC))
        crawls["late"] = deployment.last_crawl()

    with time_machine.travel(start + 2 * HOUR, tick=True):
        deployment.put_reading("sensor-101", 1700100000, 33, temperature=60, humidity=48)
        deployment.put_reading("sensor-303", three_days_ago + 120, 34, temperature=22, humidity=5)
        _settle()
        found["newer"] = materialize(warehouse=deployment.warehouse.resource)
        crawls["newer"] = deployment.last_crawl()
        found["lake_before_rerun"] = _lake_objects(deployment, "lake/")
        found["rerun"] = materialize(
            partition=found["late_window"], warehouse=deployment.warehouse.resource
        )
        found["lake_after_rerun"] = _lake_objects(deployment, "lake/")
    found["crawls"] = crawls
    return found


def test_the_first_run_on_an_empty_lake_is_one_full_export_that_lands_every_reading(
    deployment, runs
):
    """THEN the first run exported the whole table once and every stage holds the seed's
    readings, the 2001 and last year's readings in their own days, the quarantined record and
    the rule error; every asset check passed; dbt's source tests are checks of the tables."""
    first = runs["first"]
    assert first["windows"]["export_type"] == "FULL_EXPORT"
    assert first["assets"]["s3/dynamodb_export"]["counts"]["items_exported"] == len(SEED) + 2
    assert first["assets"]["warehouse/raw_sensor_readings"]["counts"]["rows_changed"] == 9
    assert all(first["checks"].values()), {k: v for k, v in first["checks"].items() if not v}
    assert (
        "warehouse/raw_sensor_readings:"
        "source_unique_combination_of_columns_iot_sensor_readings_device_id__reading_epoch"
        in first["checks"]
    )
    touched = first["reading_days_touched"]["readings"]
    year_ago = datetime.fromtimestamp(runs["year_ago"], UTC).date().isoformat()
    assert {"2001-01-01", DAY, year_ago} <= set(touched)
    (reason,) = _query(deployment, "select reason from raw.quarantined_records")[0]
    assert reason == contract.INVALID_JSON


def test_a_late_reading_published_after_a_run_lands_on_the_next_plain_materialize(deployment, runs):
    """THEN the catch-up after the first run was incremental, touched the late reading's day,
    and the reading is in the warehouse and in its hour of the marts."""
    late = runs["late"]
    assert late["windows"]["export_type"] == "INCREMENTAL_EXPORT"
    late_day = datetime.fromtimestamp(runs["three_days_ago"], UTC).date().isoformat()
    assert late_day in late["reading_days_touched"]["readings"]
    assert all(late["checks"].values()), {k: v for k, v in late["checks"].items() if not v}
    assert _query(
        deployment,
        "select cast(dt as varchar), temperature from raw.sensor_readings "
        "where device_id = 'sensor-301'",
    ) == [(late_day, 23.0)]
    hour = datetime.fromtimestamp(runs["three_days_ago"], UTC).replace(minute=0, second=0)
    assert _query(
        deployment,
        "select reading_count from analytics.fct_device_hourly "
        f"where device_id = 'sensor-301' and reading_hour = '{hour:%Y-%m-%d %H:%M:%S}'",
    ) == [(1,)]


def test_an_update_of_an_existing_key_replaces_it_in_lake_and_warehouse(deployment, runs):
    """THEN the seed key updated twice holds its latest values once, in the warehouse and in the
    marts (its alert raised by the update, counted once)."""
    rows = _query(
        deployment,
        "select temperature, humidity from raw.sensor_readings where device_id = 'sensor-101'",
    )
    assert rows == [(60.0, 48.0)]
    assert _query(
        deployment,
        "select reading_count, max_temperature from analytics.fct_device_hourly "
        "where device_id = 'sensor-101'",
    ) == [(1, 60.0)]


def test_a_deleted_item_stays_in_the_lake_and_the_warehouse(deployment, runs):
    """THEN the reading deleted from the table is still in the warehouse (the table's TTL is not
    the lake's), and the run that saw the delete counted it."""
    assert runs["late"]["assets"]["s3/lake/sensor_readings"]["counts"]["table_deletes"] == 1
    assert _query(
        deployment, "select count(*) from raw.sensor_readings where device_id = 'sensor-106'"
    ) == [(1,)]


def test_two_windows_touching_one_day_merge_correctly(deployment, runs):
    """THEN the late day holds the readings written in both windows, each once, and its marts
    count all three."""
    late_day = datetime.fromtimestamp(runs["three_days_ago"], UTC).date().isoformat()
    devices = _query(
        deployment,
        f"select device_id from raw.sensor_readings where dt = '{late_day}' "
        "and device_id like 'sensor-3%' order by 1",
    )
    assert devices == [("sensor-301",), ("sensor-302",), ("sensor-303",)]
    assert _query(
        deployment,
        "select sum(reading_count) from analytics.device_health_daily "
        f"where health_date = '{late_day}' and device_id like 'sensor-3%'",
    ) == [(3,)]


def test_rerunning_an_old_window_after_a_newer_one_changes_nothing(deployment, runs):
    """THEN running the late window again after the newer one applied no change, rewrote no
    lake object, kept the newer version, and its checks passed."""
    rerun = runs["rerun"]
    assert rerun["assets"]["s3/lake/sensor_readings"]["counts"]["changes_applied"] == 0
    assert rerun["assets"]["warehouse/raw_sensor_readings"]["counts"]["rows_changed"] == 0
    assert runs["lake_after_rerun"] == runs["lake_before_rerun"]
    assert all(rerun["checks"].values()), {k: v for k, v in rerun["checks"].items() if not v}


def test_a_rule_error_reaches_raw_and_staging_with_its_payload(deployment, runs):
    """THEN the topic rule's error record is in `raw.rule_errors` with its reason code, payload,
    topic, client id and failure, and dbt staging lists it beside the quarantined records."""
    assert _query(
        deployment,
        "select reason, payload_base64, topic, client_id, failed_action, error_message "
        "from raw.rule_errors",
    ) == [
        (
            contract.TOPIC_RULE_ERROR,
            RULE_ERROR["base64OriginalPayload"],
            "iot/sensors",
            "n/a",
            "KinesisAction",
            RULE_ERROR["failures"][0]["errorMessage"],
        )
    ]
    assert _query(
        deployment,
        "select record_source, reason from staging.stg_iot__quarantined_records order by 1",
    ) == [("stream_processor", contract.INVALID_JSON), ("topic_rule", contract.TOPIC_RULE_ERROR)]


def test_a_new_payload_field_flows_to_catalog_warehouse_and_dbt_staging(deployment, runs):
    """THEN `pressure`, sent by a seed device and by a late reading, is a column of the catalog
    table, of the warehouse and of dbt staging."""
    columns = deployment.client("glue").get_table(
        DatabaseName=deployment.settings.glue_database, Name="sensor_readings"
    )["Table"]["StorageDescriptor"]["Columns"]
    assert "pressure" in {c["Name"] for c in columns}
    assert _query(
        deployment,
        "select device_id, pressure from staging.stg_iot__sensor_readings "
        "where pressure is not null order by 1",
    ) == [("sensor-107", 1012.0), ("sensor-302", 1009.0)]


def test_the_lake_is_crawled_only_when_it_has_a_day_or_column_the_catalog_lacks(deployment, runs):
    """THEN the first run crawled, the late run crawled (a new reading day), and the newer run,
    whose readings fall on days the catalog has, did not; the catalog lists every lake day."""
    crawls = runs["crawls"]
    assert crawls["first"] is not None
    assert crawls["late"] != crawls["first"]
    assert crawls["newer"] == crawls["late"]
    late_day = datetime.fromtimestamp(runs["three_days_ago"], UTC).date().isoformat()
    partitions = deployment.client("glue").get_partitions(
        DatabaseName=deployment.settings.glue_database, TableName="sensor_readings"
    )["Partitions"]
    assert {DAY, late_day} <= {p["Values"][0] for p in partitions}


def test_every_window_of_the_runs_is_materialized_and_the_lake_covers_up_to_the_last(
    deployment, runs
):
    """THEN each catch-up started where the previous one stopped: the export windows of the
    later runs start at or before the previous run's end, so no write falls between them."""
    ends = []
    for name in ("first", "late", "newer"):
        exported = runs[name]["windows"]["exported"]
        starts = [datetime.fromisoformat(a) for a, _ in exported if a]
        if ends and starts:
            assert min(starts) <= ends[-1]
        ends.append(max(datetime.fromisoformat(b) for _, b in exported))
    assert ends == sorted(ends)
    assert ends[-1] - ends[0] > timedelta(hours=1)


def test_the_hourly_schedule_asks_for_one_run_of_the_complete_windows_since_the_lake_stopped(
    deployment, runs
):
    """GIVEN the lake after the runs WHEN the schedule ticks three hours after its last window
    THEN one run request over the complete windows from where the lake stopped, telling the
    run where that was; WHEN it ticks before any window is complete THEN it skips."""
    import dagster as dg

    from pipeline_platform.defs.jobs import (
        LAKE_TABLES,
        RANGE_END_TAG,
        RANGE_START_TAG,
        batch_etl_hourly,
    )
    from pipeline_platform.defs.lake.run_context import SINCE_TAG, state_store
    from pipeline_platform.resources.by_environment import cloud_resource

    # Where the lake stopped: the last run's end, or a little later when the rerun of an
    # older window (which exports up to its own start) came after it.
    states = state_store(cloud_resource()).load_many(LAKE_TABLES)
    last_end = min(state.watermark for state in states.values() if state.watermark)
    assert last_end >= datetime.fromisoformat(runs["newer"]["windows"]["exported"][-1][1])
    hour = last_end.replace(minute=0, second=0, microsecond=0)

    def tick(at: datetime):
        # The cloud resource opens its clients for the tick, as the daemon's would.
        with dg.build_schedule_context(
            scheduled_execution_time=at, resources={"cloud": cloud_resource()}
        ) as context:
            return batch_etl_hourly(context)

    request = tick(hour + timedelta(hours=3, minutes=5))
    skipped = tick(hour + timedelta(minutes=5))

    assert isinstance(request, dg.RunRequest)
    assert request.tags[RANGE_START_TAG] == hour_key(last_end)
    assert request.tags[RANGE_END_TAG] == hour_key(hour + timedelta(hours=2))
    assert datetime.fromisoformat(request.tags[SINCE_TAG]) <= last_end
    assert isinstance(skipped, dg.SkipReason)


def test_each_materialization_reports_the_tables_rows_days_and_columns(deployment, runs):
    """THEN the latest materialization of the lake's and the warehouse's readings (the Dagster
    UI's asset page) reports the rows the table holds and its reading days (whatever the run
    changed), the days the run touched, and the table's columns, with the `pressure` payload
    field the late run brought as an extra column described as such."""
    import dagster as dg

    from pipeline_platform import warehouse_schema as ws
    from pipeline_platform.defs import keys

    instance = dg.DagsterInstance.get()  # the runs' instance (DAGSTER_HOME of the deployment)
    lake_rows = _query(deployment, "select count(*) from raw.sensor_readings")[0][0]
    days = _query(deployment, "select count(distinct dt) from raw.sensor_readings")[0][0]
    for key in (keys.LAKE_READINGS, keys.RAW_READINGS):
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        assert metadata["dagster/row_count"] == lake_rows, key
        assert metadata["reading_days"] == days, key
        columns = {c.name: c for c in metadata["dagster/column_schema"].columns}
        assert list(columns)[: len(ws.READINGS.columns)] == list(ws.READINGS.column_names)
        assert columns["pressure"].type == "double"
        assert columns["pressure"].description == ws.EXTRA_COLUMN_DESCRIPTION
    # The latest run (the window run again) changed nothing: it touched no day, and still
    # reports what the table holds.
    lake = instance.get_latest_materialization_event(keys.LAKE_READINGS)
    assert lake is not None and lake.asset_materialization is not None
    assert lake.asset_materialization.metadata["reading_days_touched"].value == []
    assert lake.asset_materialization.metadata["changes_applied"].value == 0
