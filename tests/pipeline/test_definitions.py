"""The code location loads, describes every asset, and links the topic to the dbt marts."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import jobs, keys
from pipeline_platform.defs.lake.export import data_file_keys, export_request
from pipeline_platform.defs.lake.windows import FULL_EXPORT, INCREMENTAL_EXPORT, PlannedExport
from pipeline_platform.environment import ENV_FIRST_WRITE_DAY, PROJECT_ROOT
from pipeline_platform.resources.redshift_sql import load_plan, manifest
from pipeline_platform.resources.warehouse_load import LakeFile, LoadSpec

NOW = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)


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
    assert {keys.RAW_READINGS, keys.RAW_QUARANTINE, keys.RAW_RULE_ERRORS} <= downstream


def test_lake_catalog_and_warehouse_assets_declare_their_columns_with_descriptions(deployment):
    """GIVEN the code location WHEN an asset page of a lake, catalog or warehouse table is shown
    THEN it lists the table's columns (`dagster/column_schema`), each with its type, whether it
    may be null and the description `warehouse_schema` gives it; warehouse tables name their
    table."""
    from pipeline_platform.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    tables = {
        ws.READINGS: (keys.LAKE_READINGS, keys.GLUE_READINGS, keys.RAW_READINGS),
        ws.QUARANTINE: (keys.LAKE_QUARANTINE, keys.GLUE_QUARANTINE, keys.RAW_QUARANTINE),
        ws.RULE_ERRORS: (keys.LAKE_RULE_ERRORS, keys.GLUE_RULE_ERRORS, keys.RAW_RULE_ERRORS),
    }
    for table, asset_keys in tables.items():
        for key in asset_keys:
            metadata = graph.get(key).metadata
            schema = metadata["dagster/column_schema"]
            columns = {c.name: c for c in schema.columns}
            assert list(columns) == list(table.column_names), key
            for column in table.columns:
                shown = columns[column.name]
                assert (shown.type, shown.description) == (column.type, column.description)
                assert shown.constraints.nullable is column.nullable
        warehouse_key = asset_keys[2]
        assert graph.get(warehouse_key).metadata["dagster/table_name"] == f"raw.{table.name}"


def _spec(files: tuple[LakeFile, ...], **overrides: Any) -> LoadSpec:
    fields: dict[str, Any] = {
        "table": ws.READINGS,
        "bucket": "lake-bucket",
        "lake_prefix": keys.LAKE_READINGS_PREFIX,
        "files": files,
        "lake_version": 7,
        "manifest_key": "pipeline/manifests/sensor_readings/v00000007.manifest",
        "lake_id": "lake1",
        "extra_columns": {"pressure": "double"},
    }
    return LoadSpec(**(fields | overrides))


def test_redshift_load_is_one_copy_from_a_manifest_and_derives_dt_in_the_merge():
    """GIVEN two changed lake days, one of them with a new `pressure` column, WHEN the Redshift
    statements are built THEN the column is added, both days' files are loaded by ONE COPY of
    a manifest (Parquet, the IAM role, FILLRECORD for the older file's missing trailing column),
    and the merge derives `dt` from `reading_at` (no UPDATE), replaces the staged days, queues
    the changed rows' hours for dbt and records the lake version, in one transaction."""
    files = (
        LakeFile(f"{keys.LAKE_READINGS_PREFIX}dt=2001-01-01/part-0.parquet", 1000),
        LakeFile(f"{keys.LAKE_READINGS_PREFIX}dt=2023-11-16/part-0.parquet", 2000),
    )
    spec = _spec(files)
    role = "arn:aws:iam::123456789012:role/copy"
    plan = load_plan(spec, role, {c.name for c in ws.READINGS_COLUMNS}, spec.manifest_key, NOW)

    setup = "\n".join(plan.setup)
    assert 'alter table raw.sensor_readings add column "pressure" double precision' in setup
    (copy,) = [s for s in plan.setup if s.startswith("COPY")]
    assert "s3://lake-bucket/pipeline/manifests/sensor_readings/v00000007.manifest" in copy
    assert f"aws_iam_role={role}" in copy
    assert all(word in copy for word in ("FORMAT AS PARQUET", "MANIFEST", "FILLRECORD"))
    merge = "\n".join(plan.merge)
    assert "update" not in merge.lower()
    assert (
        "delete from raw.sensor_readings where dt in (select distinct cast(reading_at as date)"
        in merge
    )
    assert (
        '"written_at", "pressure", dt) select' in merge and "cast(reading_at as date) from" in merge
    )
    assert "insert into pipeline.dbt_pending" in merge
    assert "'sensor_readings', 'lake1', 7" in merge
    entries = manifest(spec)["entries"]
    assert [(e["url"], e["mandatory"], e["meta"]["content_length"]) for e in entries] == [
        (f"s3://lake-bucket/{f.key}", True, f.size) for f in files
    ]


def test_redshift_load_of_change_sets_keeps_each_keys_newest_version_and_replaces_keys():
    """GIVEN the change sets of two lake versions WHEN the Redshift statements are built THEN the
    one COPY reads them from the manifest, the merge keeps each key's newest version (by write
    time) and replaces exactly those keys in `raw.sensor_readings`, not whole days."""
    files = tuple(
        LakeFile(f"pipeline/changes/sensor_readings/v0000000{v}.parquet", 300) for v in (6, 7)
    )
    spec = _spec(files, change_sets=True)
    plan = load_plan(
        spec,
        "arn:aws:iam::123456789012:role/copy",
        {c.name for c in ws.READINGS_COLUMNS},
        spec.manifest_key,
        NOW,
    )

    assert [e["url"] for e in manifest(spec)["entries"]] == [
        f"s3://lake-bucket/{f.key}" for f in files
    ]
    merge = "\n".join(plan.merge)
    assert (
        "row_number() over (partition by device_id, reading_epoch order by written_at desc "
        "nulls last)" in merge
    )
    assert (
        "delete from raw.sensor_readings using load_latest where "
        "raw.sensor_readings.device_id = load_latest.device_id and "
        "raw.sensor_readings.reading_epoch = load_latest.reading_epoch" in merge
    )
    assert "where dt in" not in merge
    assert "select distinct 'sensor_readings', 7, dt, reading_hour" in merge


def test_export_requests_follow_aws_for_both_export_types():
    """GIVEN planned exports WHEN turned into requests THEN an incremental one names its window
    and NEW_AND_OLD_IMAGES; a full one as of now leaves ExportTime to AWS, an earlier one names
    it."""
    window = PlannedExport(INCREMENTAL_EXPORT, NOW - timedelta(hours=1), NOW, (None, NOW))
    now_full = PlannedExport(FULL_EXPORT, None, NOW, (None, NOW))
    past_full = PlannedExport(FULL_EXPORT, None, NOW - timedelta(hours=1), (None, NOW))

    incremental = export_request(window, "arn", "b", "p/", NOW)
    full = export_request(now_full, "arn", "b", "p/", NOW)
    past = export_request(past_full, "arn", "b", "p/", NOW)

    assert incremental["ExportType"] == "INCREMENTAL_EXPORT"
    assert incremental["IncrementalExportSpecification"] == {
        "ExportFromTime": NOW - timedelta(hours=1),
        "ExportToTime": NOW,
        "ExportViewType": "NEW_AND_OLD_IMAGES",
    }
    assert full["ExportType"] == "FULL_EXPORT" and "ExportTime" not in full
    assert past["ExportTime"] == NOW - timedelta(hours=1)
    assert incremental["S3Prefix"] == "p"


def test_export_data_files_come_from_listing_without_manifest():
    """GIVEN an emulator export (data files only), THEN only the gzipped data files are read."""
    listed = [
        "p/AWSDynamoDB/1/_started",
        "p/AWSDynamoDB/1/data/a.json.gz",
        "p/AWSDynamoDB/1/manifest-summary.md5",
    ]
    assert data_file_keys(None, "b", listed, {}) == ["p/AWSDynamoDB/1/data/a.json.gz"]


def test_batch_assets_are_partitioned_by_write_hour_and_the_schedules_are_on_by_default():
    """GIVEN the code location WHEN loaded THEN every batch asset shares the hourly write-window
    partitions (one run backfills a range) and both schedules start running by themselves."""
    from pipeline_platform.definitions import build_definitions
    from pipeline_platform.defs.partitions import WRITE_HOURS

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    batch = jobs.batch_selection.resolve(graph)
    assert keys.RAW_RULE_ERRORS in batch and keys.DYNAMODB_EXPORT in batch
    for key in batch:
        node = graph.get(key)
        assert node.partitions_def == WRITE_HOURS, key
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    for schedule in defs.schedules or []:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, schedule.name


def test_dbt_rebuilds_exactly_the_queued_hours_or_everything_once_after_a_replacement():
    """GIVEN hours queued by loads WHEN dbt's arguments are built THEN the hours and days are
    passed in dbt's environment; GIVEN a replaced table or more than a month of hours THEN one
    full refresh instead."""
    from pipeline_platform.defs.dbt.assets import FULL_REFRESH_HOURS, build_args
    from pipeline_platform.resources.warehouse_load import Pending

    queued = Pending(("2023-11-16 12:00:00",), ("2023-11-16", "2026-12-01"), {"t": 3})
    hours = tuple(f"2023-01-{d:02d} {h:02d}:00:00" for d in range(1, 32) for h in range(24))

    args, env = build_args(queued)
    assert args == ["build", "--exclude-resource-type", "unit_test"]
    assert json.loads(env["DBT_REBUILD_HOURS"]) == ["2023-11-16 12:00:00"]
    assert json.loads(env["DBT_REBUILD_DAYS"]) == ["2023-11-16", "2026-12-01"]
    assert build_args(Pending((), (), {}, full_refresh=True))[0][-1] == "--full-refresh"
    many = Pending((*hours, "2023-02-01 00:00:00"), ("2023-01-01",), {})
    assert len(many.hours) > FULL_REFRESH_HOURS
    assert build_args(many)[0][-1] == "--full-refresh"


def test_dbt_resource_knows_the_dbt_version_without_asking_dbt():
    """GIVEN the platform's dbt resource on the dbt beside this interpreter WHEN dagster-dbt asks
    which dbt it runs THEN the answer is what `dbt --version` prints, without that process (a
    dbt start-up and PyPI requests on every run)."""
    import re
    import subprocess

    from dagster_dbt import DbtCliResource

    from pipeline_platform.resources.dbt import dbt_executable, dbt_resource

    resource = dbt_resource("local")
    printed = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    installed = re.search(r"installed:\s*(\d+\.\d+\.\d+)", printed)
    assert installed is not None, printed
    assert str(resource._cli_version) == installed.group(1)
    # the names this resource overrides are still the ones dagster-dbt calls
    assert isinstance(vars(DbtCliResource).get("_cli_version"), functools.cached_property)
    assert callable(vars(DbtCliResource).get("_initialize_dbt_core_adapter"))


def _parse_events(target: Path) -> set[str]:
    """The names of the events dbt logged in `target` (dagster-dbt logs there, as JSON)."""
    lines = (target / "dbt.log").read_text().splitlines()
    return {json.loads(line)["info"]["name"] for line in lines if line.startswith("{")}


def test_each_dbt_build_starts_from_the_parse_the_last_one_left(tmp_path, monkeypatch):
    """GIVEN the project's saved parse written under another warehouse path (as the code
    location's parse may be) WHEN two commands run on one warehouse, the first one's parse
    kept THEN the first parses the whole project and the second only what changed."""
    import shutil

    from dagster_dbt import DbtProject

    from pipeline_platform.resources.dbt import (
        DBT_PROJECT_DIR,
        PlatformDbtCliResource,
        dbt_executable,
    )
    from pipeline_platform.resources.dbt_folders import keep_parse_state

    project_dir = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    project = DbtProject(project_dir=project_dir, target="local")
    dbt = PlatformDbtCliResource(
        project_dir=str(project_dir), dbt_executable=dbt_executable(), target="local"
    )
    saved = project_dir / project.target_path
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "elsewhere.duckdb"))
    dbt.cli(["parse"], target_path=saved).wait()

    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    first = dbt.cli(["parse"], target_path=saved / "first").wait()
    keep_parse_state(first.target_path, saved)
    second = dbt.cli(["parse"], target_path=saved / "second").wait()

    assert "UnableToPartialParse" in _parse_events(first.target_path)
    assert "UnableToPartialParse" not in _parse_events(second.target_path)
    assert "PartialParsingEnabled" in _parse_events(second.target_path)


def test_a_deployment_sets_its_first_write_window_and_a_wrong_day_stops_the_load():
    """GIVEN `FIRST_WRITE_DAY` WHEN the code location loads THEN the batch assets' write windows
    start at that day's midnight UTC; a value that is not a day, or a day after today, stops
    the load with a message naming the variable."""
    code = (
        "from pipeline_platform.definitions import build_definitions\n"
        "from pipeline_platform.defs.partitions import WRITE_HOURS\n"
        "build_definitions()\n"
        "print(WRITE_HOURS.get_first_partition_key())"
    )

    def load(day: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, ENV_FIRST_WRITE_DAY: day},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    loaded = load("2026-11-20")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().splitlines()[-1] == "2026-11-20-00:00"
    for wrong, says in (("20/11/2026", "is not a day"), ("2999-01-01", "is after today")):
        refused = load(wrong)
        assert refused.returncode != 0
        assert f"{ENV_FIRST_WRITE_DAY}=" in refused.stderr and says in refused.stderr
