"""dbt models as assets, dbt tests as asset checks; sources join the warehouse load assets."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from pipeline_platform.defs.partitions import DAILY, SINGLE_RUN
from pipeline_platform.env_override import overridden
from pipeline_platform.resources.dbt import dbt_project
from pipeline_platform.resources.warehouse import Warehouse

MARTS_SCHEMA = "analytics"
# The batch job runs hourly: a mart older than two hours is late, a day old is failing.
MARTS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=2)
)


def build_args(partition_range: tuple[str, str] | None = None) -> list[str]:
    """`dbt build` arguments; a partition range is passed to dbt as vars for the log only."""
    args = ["build"]
    if partition_range:
        args += [
            "--vars",
            f'{{"batch_start": "{partition_range[0]}", "batch_end": "{partition_range[1]}"}}',
        ]
    return args


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Model keys are `[schema, model]` (where the table lives); groups follow the folders."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        """The default spec, keyed by schema and grouped by the model's folder."""
        base = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return base  # sources keep the key their `meta.dagster.asset_key` gives them
        folder = props["fqn"][1] if len(props["fqn"]) > 2 else "dbt"
        spec = base.replace_attributes(
            key=dg.AssetKey([props["schema"], props["name"]]),
            group_name=f"dbt_{folder}",
            kinds={"dbt", "sql"},
        )
        if props["schema"] == MARTS_SCHEMA:
            spec = spec.replace_attributes(freshness_policy=MARTS_FRESHNESS)
        return spec


def build_dbt_assets(target: str) -> dg.AssetsDefinition:
    """The project's models for `target` as one partitioned multi-asset running `dbt build`."""
    project = dbt_project(target)
    translator = PlatformDbtTranslator(
        settings=DagsterDbtTranslatorSettings(
            enable_asset_checks=True, enable_source_tests_as_checks=True
        )
    )

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        name="dbt_models",
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse: Warehouse,
    ):
        """Staging views and marts built by `dbt build`, tests reported as asset checks."""
        window = context.partition_time_window
        args = build_args((window.start.date().isoformat(), window.end.date().isoformat()))
        # The profile reads where the warehouse is from the environment of the dbt process.
        with overridden(warehouse.dbt_environment()):
            yield from dbt.cli(args, context=context).stream()

    return dbt_models
