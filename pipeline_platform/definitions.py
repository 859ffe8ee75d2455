"""The Dagster code location: assembles each stage's definitions for the configured environment."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import dagster as dg

from pipeline_platform.environment import get_environment

if TYPE_CHECKING:
    from pipeline_platform.resources.warehouse import Warehouse


def build_definitions(warehouse: Warehouse | None = None) -> dg.Definitions:
    """Definitions of every stage, wired to the resources of the current environment; with
    `warehouse`, loading that warehouse instead of the environment's (dbt on its target)."""
    # Two beta features are used on purpose: a single-run backfill policy (one run
    # loads a whole partition range) and the table's observable source asset. Their
    # warnings, repeated on every load, give the user nothing to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _build_definitions(warehouse)


def _build_definitions(warehouse: Warehouse | None) -> dg.Definitions:
    from pipeline_platform.defs import jobs
    from pipeline_platform.defs.catalog.assets import glue_tables
    from pipeline_platform.defs.dbt.assets import build_dbt_assets
    from pipeline_platform.defs.lake.assets import (
        dynamodb_export,
        lake_quarantined_records,
        lake_rule_errors,
        lake_sensor_readings,
    )
    from pipeline_platform.defs.notifications.sensors import sensors
    from pipeline_platform.defs.streaming.assets import external_specs, readings_table
    from pipeline_platform.defs.warehouse.assets import (
        raw_quarantined_records,
        raw_rule_errors,
        raw_sensor_readings,
    )
    from pipeline_platform.resources.by_environment import build_resources

    environment = get_environment()
    resources = build_resources(environment, warehouse)
    dbt_models = build_dbt_assets(resources["warehouse"].dbt_target)
    return dg.Definitions(
        assets=[
            *external_specs,
            readings_table,
            dynamodb_export,
            lake_sensor_readings,
            lake_quarantined_records,
            lake_rule_errors,
            glue_tables,
            raw_sensor_readings,
            raw_quarantined_records,
            raw_rule_errors,
            dbt_models,
        ],
        jobs=[jobs.batch_etl, jobs.observe_table],
        schedules=[jobs.batch_etl_hourly, jobs.observe_schedule],
        sensors=sensors,
        resources=resources,
        executor=jobs.run_executor(environment),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location `dagster dev` and `workspace.yaml` load."""
    return build_definitions()
