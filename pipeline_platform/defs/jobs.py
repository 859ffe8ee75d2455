"""The batch ETL job, its schedule, the table observation, and the executor of every run."""

from datetime import timedelta

import dagster as dg

from pipeline_platform.defs import keys
from pipeline_platform.environment import Environment

BATCH_JOB = "batch_etl"
OBSERVE_JOB = "observe_readings_table"

# Everything Dagster materialises, from the export to the marts.
batch_selection = dg.AssetSelection.assets(keys.DYNAMODB_EXPORT, keys.LAKE_QUARANTINE).downstream()

batch_etl = dg.define_asset_job(
    BATCH_JOB,
    selection=batch_selection,
    description="Export the table, shape the lake, crawl, load the warehouse and build dbt.",
)


@dg.schedule(job=batch_etl, cron_schedule="5 * * * *", execution_timezone="UTC")
def batch_etl_hourly(context: dg.ScheduleEvaluationContext):
    """Refresh today's partition every hour; in the first hour, close yesterday's too.

    Readings arrive late, so yesterday gets one last run after midnight (UTC).
    """
    now = context.scheduled_execution_time
    days = [now.date()]
    if now.hour == 0:
        days.insert(0, now.date() - timedelta(days=1))
    for day in days:
        yield dg.RunRequest(run_key=f"{day}@{now:%Y-%m-%dT%H}", partition_key=day.isoformat())


observe_table = dg.define_asset_job(
    OBSERVE_JOB, selection=dg.AssetSelection.assets(keys.DYNAMODB_TABLE)
)
observe_schedule = dg.ScheduleDefinition(
    job=observe_table, cron_schedule="*/15 * * * *", name="observe_readings_table_15min"
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
