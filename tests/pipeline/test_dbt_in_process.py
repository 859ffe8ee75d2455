"""dbt run in the run's own process: Dagster sees what dbt did, failures included, and the
warehouse is free for other processes once the step ends.

A small dbt project in a temporary folder, on a DuckDB file, built through dagster-dbt's
`@dbt_assets` with the platform's resource, for real (dbt-core, dbt-duckdb, DuckDB)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipeline_platform.resources.dbt import PlatformDbtCliResource, dbt_executable
from pipeline_platform.resources.dbt_folders import prune_command_folders

PROJECT = {
    "dbt_project.yml": """
        name: small
        version: "1.0"
        profile: small
        """,
    "profiles.yml": """
        small:
          target: local
          outputs:
            local:
              type: duckdb
              path: "{{ env_var('WAREHOUSE_PATH') }}"
              schema: main
        """,
    "models/readings.sql": (
        "select * from (values ('sensor-1', 21.5), ('sensor-2', null)) t(device_id, temperature)"
    ),
    "models/broken.sql": "select * from a_table_nobody_created",
    "models/schema.yml": """
        version: 2
        models:
          - name: readings
            columns:
              - name: device_id
                data_tests: [not_null]
              - name: temperature
                data_tests: [not_null]
        """,
}


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The project's folder, parsed, and the DuckDB file its profile points at."""
    project_dir = tmp_path / "small"
    for name, text in PROJECT.items():
        path = project_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    PlatformDbtCliResource(
        project_dir=str(project_dir), dbt_executable=dbt_executable(), target="local"
    ).cli(["parse", "--quiet"], target_path=Path("target")).wait()
    return project_dir, warehouse


def _assets(project_dir: Path) -> dg.AssetsDefinition:
    translator = DagsterDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    )

    @dbt_assets(
        manifest=project_dir / "target" / "manifest.json", dagster_dbt_translator=translator
    )
    def small(context: dg.AssetExecutionContext, dbt: PlatformDbtCliResource):
        invocation, _ = dbt.in_process(["build"], context=context, translator=translator)
        yield from invocation.stream()

    return small


def _materialize(project_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [_assets(project_dir)],
        resources={
            "dbt": PlatformDbtCliResource(
                project_dir=str(project_dir), dbt_executable=dbt_executable(), target="local"
            )
        },
        raise_on_error=False,
    )


def test_a_failing_model_and_test_fail_the_step_after_reporting_what_succeeded(project):
    """GIVEN a model that builds, one whose SQL fails and a not-null test that fails WHEN dbt
    runs in the run's process THEN the good model is materialized, each test is a check with
    its outcome, and the step fails with dbt's own error naming the broken model."""
    project_dir, _ = project

    result = _materialize(project_dir)

    assert not result.success
    materialized = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert materialized == {"readings"}
    checks = {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
    assert checks == {"not_null_readings_device_id": True, "not_null_readings_temperature": False}
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert "broken" in failure.message
    assert "a_table_nobody_created" in failure.message


def test_the_warehouse_is_free_for_other_processes_once_dbt_is_done(project):
    """GIVEN a dbt build that ran in this process WHEN another process opens the DuckDB file
    for writing (the UI's next run, the demo's report, a notebook) THEN it gets it: dbt-duckdb
    keeps its database open between commands, and the invocation closes it."""
    project_dir, warehouse = project
    _materialize(project_dir)

    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
            " print(c.execute('select count(*) from main.readings').fetchone()[0])",
            str(warehouse),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "2"


def test_only_the_newest_command_folders_stay(tmp_path):
    """GIVEN 25 command folders of an op, and the project's own files beside them WHEN old ones
    are pruned THEN the 20 newest of that op stay, and nothing else is touched."""
    now = time.time()
    for index in range(25):
        folder = tmp_path / f"dbt_models-run{index:02d}-abc"
        folder.mkdir()
        os.utime(folder, (now - 100 + index, now - 100 + index))
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "compiled").mkdir()

    prune_command_folders(tmp_path, prefix="dbt_models-")

    kept = sorted(path.name for path in tmp_path.glob("dbt_models-*"))
    assert kept == [f"dbt_models-run{index:02d}-abc" for index in range(5, 25)]
    assert (tmp_path / "manifest.json").exists()
    assert (tmp_path / "compiled").is_dir()
