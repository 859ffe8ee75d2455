"""dbt models as assets, dbt tests as asset checks; sources join the warehouse load assets."""

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipeline_platform import progress
from pipeline_platform.defs.partitions import SINGLE_RUN, WRITE_HOURS
from pipeline_platform.env_override import overridden
from pipeline_platform.resources.dbt import PlatformDbtCliResource, dbt_project
from pipeline_platform.resources.warehouse import Warehouse
from pipeline_platform.resources.warehouse_load import Pending

MARTS_SCHEMA = "analytics"
#: The step (op) that runs `dbt build`.
DBT_STEP = "dbt_models"
# The batch job runs hourly: a mart older than two hours is late, a day old is failing.
MARTS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=2)
)


#: Beyond this many reading hours to rebuild (a month), one full refresh is cheaper than
#: deleting and inserting them hour by hour.
FULL_REFRESH_HOURS = 24 * 31


REBUILD_HOURS_ENV = "DBT_REBUILD_HOURS"
REBUILD_DAYS_ENV = "DBT_REBUILD_DAYS"


def build_args(pending: Pending) -> tuple[list[str], dict[str, str]]:
    """`dbt build` arguments, and the environment, that rebuild exactly what loads changed.

    The incremental marts read the changed reading hours and days from the dbt
    process's environment (`DBT_REBUILD_HOURS`, `DBT_REBUILD_DAYS`, JSON lists;
    see `macros/rebuild_scope.sql`): unlike `--vars`, a new value does not make
    dbt parse the whole project again. A load that replaced a whole table, or
    more than `FULL_REFRESH_HOURS` hours, rebuilds everything once instead.
    """
    # Unit tests check the models' SQL on fixed rows: they belong to CI (tests/dbt), not to
    # every production build, where they cost a third of the build.
    build = ["build", "--exclude-resource-type", "unit_test"]
    if pending.full_refresh or len(pending.hours) > FULL_REFRESH_HOURS:
        return [*build, "--full-refresh"], {REBUILD_HOURS_ENV: "", REBUILD_DAYS_ENV: ""}
    return build, {
        REBUILD_HOURS_ENV: json.dumps(list(pending.hours)),
        REBUILD_DAYS_ENV: json.dumps(list(pending.days)),
    }


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
        partitions_def=WRITE_HOURS,
        backfill_policy=SINGLE_RUN,
        name=DBT_STEP,
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        dbt: PlatformDbtCliResource,
        warehouse: Warehouse,
    ):
        """Staging views and marts built by `dbt build`, tests reported as asset checks.

        The incremental marts rebuild the reading hours and days the warehouse
        loads queued (whatever run queued them); the queue is cleared once the
        build succeeds, so a failed build is retried by the next run.
        """
        pending = warehouse.pending()
        args, scope = build_args(pending)
        context.log.info(
            f"dbt rebuilds {len(pending.hours)} reading hour(s) over {len(pending.days)} day(s)"
            + (" (full refresh)" if "--full-refresh" in args else "")
        )
        invocation, selection = dbt.in_process(args, context=context, translator=translator)
        # The profile reads where the warehouse is, and the models their scope, from the
        # environment, which dbt in this process reads when the command starts.
        with overridden(warehouse.dbt_environment() | scope | selection):
            for built, event in enumerate(invocation.stream(), start=1):
                progress.report("building models and running tests", built, None, "nodes")
                yield event
        warehouse.clear_pending(pending)

    return dbt_models
