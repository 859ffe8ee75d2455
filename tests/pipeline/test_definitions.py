"""The code location loads, describes every asset, and links the topic to the dbt marts."""

from __future__ import annotations

from datetime import date

import dagster as dg

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.export import data_file_keys, export_request
from pipeline_platform.resources.redshift_sql import merge_statements
from pipeline_platform.resources.warehouse_load import LoadSpec


def test_definitions_load_and_connect_topic_to_marts(deployment):
    """GIVEN the local environment, WHEN the code location loads, THEN every asset has kinds and a
    description, and the marts descend from the `iot/sensors` topic."""
    from pipeline_platform.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.kinds, f"{key.to_user_string()} has no kinds"
        assert node.description, f"{key.to_user_string()} has no description"
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "analytics"}
    assert marts
    downstream = dg.AssetSelection.assets(keys.IOT_TOPIC).downstream().resolve(graph)
    assert marts <= downstream
    assert keys.RAW_READINGS in downstream


def test_redshift_load_copies_each_partition_and_merges_in_one_transaction():
    """GIVEN a lake day with a new `pressure` column, WHEN the Redshift statements are built, THEN
    the column is added, the day is COPYed as Parquet with the IAM role, and the merge deletes the
    staged natural keys before inserting."""
    spec = LoadSpec(
        ws.READINGS_TABLE,
        ws.READINGS_COLUMNS,
        ws.READINGS_KEY,
        "lake-bucket",
        keys.LAKE_READINGS_PREFIX,
        (date(2023, 11, 16),),
        {"pressure": "double"},
    )
    role = "arn:aws:iam::123456789012:role/copy"
    plan = merge_statements(spec, role, existing={c.name for c in ws.READINGS_COLUMNS})
    setup = "\n".join(plan.setup)
    assert 'alter table raw.sensor_readings add column "pressure" double precision' in setup
    assert "s3://lake-bucket/lake/sensor_readings/dt=2023-11-16/" in setup
    assert f"aws_iam_role={role}" in setup and "FORMAT AS PARQUET" in setup
    delete, insert = plan.merge
    assert delete.startswith("delete from raw.sensor_readings using stage_sensor_readings")
    assert "reading_epoch = stage_sensor_readings.reading_epoch" in delete
    assert insert.startswith("insert into raw.sensor_readings (") and '"pressure"' in insert


def test_export_request_is_incremental_only_for_a_window_aws_accepts():
    """GIVEN write windows, THEN an allowed one (15 min .. 24 h, past) asks for an incremental
    export and a too-short one falls back to a full export."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 2, tzinfo=UTC)
    ok = export_request("arn", "b", "p/", (now - timedelta(hours=1), now), now)
    short = export_request("arn", "b", "p/", (now - timedelta(minutes=5), now), now)
    assert ok["ExportType"] == "INCREMENTAL_EXPORT"
    assert ok["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    assert short["ExportType"] == "FULL_EXPORT"


def test_export_data_files_come_from_listing_without_manifest():
    """GIVEN an emulator export (data files only), THEN only the gzipped data files are read."""
    listed = [
        "p/AWSDynamoDB/1/_started",
        "p/AWSDynamoDB/1/data/a.json.gz",
        "p/AWSDynamoDB/1/manifest-summary.md5",
    ]
    assert data_file_keys(None, "b", listed, {}) == ["p/AWSDynamoDB/1/data/a.json.gz"]
