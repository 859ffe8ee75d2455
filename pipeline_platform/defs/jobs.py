"""The batch ETL job, its schedule (on by default), the table observation, and the executor of
every run.

The schedule and `pipeline-platform materialize` ask the same question: where did
the lake stop (`lake.windows.catch_up`)? They run every write window from there,
the schedule up to the last complete hour, the command line up to now.
"""

import json

import dagster as dg

from cloudformation.dagster_tasks import HOURLY_RUN, OBSERVATION_RUN, REBUILD_RUN
from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.run_context import REBUILD_TAG, SINCE_TAG, state_store
from pipeline_platform.defs.lake.windows import CatchUp, catch_up
from pipeline_platform.environment import Environment
from pipeline_platform.resources.cloud import CloudResource

BATCH_JOB = "batch_etl"
OBSERVE_JOB = "observe_readings_table"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
#: Every lake table: a catch-up starts where the one furthest behind stopped.
LAKE_TABLES = tuple(table.name for table in ws.TABLES)

# Everything Dagster materialises, from the export to the marts.
batch_selection = dg.AssetSelection.assets(
    keys.DYNAMODB_EXPORT, keys.LAKE_QUARANTINE, keys.LAKE_RULE_ERRORS
).downstream()

# In a deployment each run is an ECS task sized by these tags (`ecs/cpu`, `ecs/memory`); on a
# laptop runs stay in their process and the tags say nothing.
batch_etl = dg.define_asset_job(
    BATCH_JOB,
    selection=batch_selection,
    tags=HOURLY_RUN.run_tags(),
    description="Export the table's writes of the run's windows, merge them into the lake by "
    "reading day, crawl when the lake has a new day or column, merge the changed rows into "
    "the warehouse and rebuild the changed hours with dbt.",
)


def run_tags(plan: CatchUp, rebuild: bool = False) -> dict[str, str]:
    """Tags of a run over `plan`'s windows (a partition range), from where the lake stopped."""
    tags = {RANGE_START_TAG: plan.first_key, RANGE_END_TAG: plan.last_key}
    if plan.since is not None:
        tags[SINCE_TAG] = plan.since.isoformat()
    if rebuild:
        # One full export of the table and every lake day rewritten: a larger task.
        tags[REBUILD_TAG] = "true"
        tags.update(REBUILD_RUN.run_tags())
    return tags


@dg.schedule(
    job=batch_etl,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def batch_etl_hourly(context: dg.ScheduleEvaluationContext, cloud: CloudResource):
    """Every hour, one run over every complete write window the lake has not taken yet.

    Normally that is the hour just ended; after an outage, every hour since the
    lake stopped, in one run (one export per 24 hours of them).
    """
    states = state_store(cloud).load_many(LAKE_TABLES)
    plan = catch_up(states, context.scheduled_execution_time, complete_only=True)
    if plan is None:
        return dg.SkipReason("the lake already holds every complete write window")
    return dg.RunRequest(
        run_key=f"{plan.first_key}..{plan.last_key}@{context.scheduled_execution_time:%Y%m%dT%H}",
        tags=run_tags(plan),
    )


#: The observation asks two APIs: the smallest task, on Fargate Spot (an interrupted one is
#: simply observed again 15 minutes later).
OBSERVATION_TAGS = {
    **OBSERVATION_RUN.run_tags(),
    "ecs/run_task_kwargs": json.dumps(
        {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}
    ),
}
observe_table = dg.define_asset_job(
    OBSERVE_JOB, selection=dg.AssetSelection.assets(keys.DYNAMODB_TABLE), tags=OBSERVATION_TAGS
)
observe_schedule = dg.ScheduleDefinition(
    job=observe_table,
    cron_schedule="*/15 * * * *",
    name="observe_readings_table_15min",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def run_executor(environment: Environment) -> dg.ExecutorDefinition | None:
    """The executor of every run of the code location, None for Dagster's default.

    The code location's executor is also the one of the runs the UI launches for an asset
    selection ("Materialize all"), not only of the jobs defined here. Locally every step
    runs in the run's own process: Dagster's default starts a process per step, and each
    loads the code location again (dbt's manifest included), which on a laptop costs more
    than the steps themselves (a day of a 20-device fleet: minutes instead of seconds).
    In `aws` a deployment keeps Dagster's default, a process per step, so that a step that
    fails hard takes only itself down and independent steps run side by side.
    """
    return dg.in_process_executor if environment is Environment.LOCAL else None
