"""The same project is valid for Redshift, checked without a cluster (`dbt parse`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.dbt_project_runner import DbtFailed, run_dbt

REDSHIFT_ENV = {
    "REDSHIFT_HOST": "iot-warehouse.example.ap-southeast-2.redshift.amazonaws.com",
    "REDSHIFT_USER": "dbt_runner",
    "REDSHIFT_DATABASE": "iot",
    "REDSHIFT_CLUSTER_ID": "redshift-dev-apse2-iot-01",
}


@pytest.fixture(scope="module")
def redshift_manifest(tmp_path_factory: pytest.TempPathFactory):
    """GIVEN connection settings in the environment only, WHEN dbt parses for Redshift."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in REDSHIFT_ENV.items():
            env.setenv(key, value)
        result = run_dbt(["parse", "--target", "redshift"], tmp_path_factory.mktemp("rs"))
    return result.result


def test_project_parses_for_redshift(redshift_manifest) -> None:
    # THEN the manifest is built by the Redshift adapter with every model in it
    assert redshift_manifest.metadata.adapter_type == "redshift"
    models = {n.name: n for n in redshift_manifest.nodes.values() if n.resource_type == "model"}
    assert set(models) == {
        "stg_iot__sensor_readings",
        "stg_iot__quarantined_records",
        "fct_device_hourly",
        "fct_alerts",
        "dim_devices",
        "device_health_daily",
    }
    # AND marts land in `analytics`, staging in `staging`, without target prefixes
    assert models["fct_device_hourly"].schema == "analytics"
    assert models["stg_iot__sensor_readings"].schema == "staging"


def test_marts_are_incremental_by_the_hours_and_days_to_rebuild_with_redshift_keys(
    redshift_manifest,
) -> None:
    nodes = {n.name: n for n in redshift_manifest.nodes.values()}
    # THEN each incremental mart appends what it rebuilt after deleting that scope (reading
    # hours, or days), which Redshift runs as plain DELETE and INSERT in one transaction
    scopes = {
        "fct_device_hourly": "delete_rebuild_scope('reading_hour', 'hours')",
        "fct_alerts": "delete_rebuild_scope('reading_hour', 'hours')",
        "device_health_daily": "delete_rebuild_scope('health_date', 'days')",
    }
    for name, hook in scopes.items():
        config = nodes[name].config
        assert config.materialized == "incremental", name
        assert config.incremental_strategy == "append", name
        assert any(hook in h.sql for h in config.pre_hook), name
    # AND distribution and sort keys are set for Redshift
    hourly = nodes["fct_device_hourly"].config
    assert hourly.get("dist") == "device_id"
    assert hourly.get("sort") == ["reading_hour", "device_id"]


def test_sources_carry_the_dagster_asset_keys(redshift_manifest) -> None:
    keys = {s.name: s.meta["dagster"]["asset_key"] for s in redshift_manifest.sources.values()}
    # THEN the Dagster graph can join the raw tables to the dbt models
    assert keys == {
        "sensor_readings": ["warehouse", "raw_sensor_readings"],
        "quarantined_records": ["warehouse", "raw_quarantined_records"],
        "rule_errors": ["warehouse", "raw_rule_errors"],
    }


def test_missing_connection_setting_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no REDSHIFT_HOST in the environment
    monkeypatch.delenv("REDSHIFT_HOST", raising=False)
    monkeypatch.setenv("REDSHIFT_USER", "dbt_runner")
    # WHEN dbt parses for Redshift, THEN it fails and says which setting is missing
    with pytest.raises(DbtFailed, match="REDSHIFT_HOST"):
        run_dbt(["parse", "--target", "redshift"], tmp_path)
