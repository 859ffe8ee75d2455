"""Dagster resources: the cloud (AWS or the local emulator) and the warehouse.

`build_resources()` is the one place that maps an environment to resources:
LOCAL = the DuckDB warehouse, AWS = the Redshift warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_platform.environment import (
    ANALYTICS_STACK,
    ENV_WAREHOUSE_PATH,
    Environment,
    SettingMissing,
    Settings,
)

if TYPE_CHECKING:
    from pipeline_platform.resources.cloud import CloudResource


def cloud_resource(settings: Settings) -> CloudResource:
    """The AWS side of `settings`: endpoint, region and the deployment's resource names."""
    from pipeline_platform.resources.cloud import CloudResource

    return CloudResource(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        table_name=settings.table_name,
        function_name=settings.function_name,
        quarantine_bucket=settings.quarantine_bucket,
        quarantine_prefix=settings.quarantine_prefix,
        lake_bucket=settings.lake_bucket,
        glue_database=settings.glue_database,
        crawler_name=settings.crawler_name,
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    """Resources for `settings.environment`, keyed as the assets require them."""
    from pipeline_platform.defs.dbt.project import (
        DBT_PROJECT_DIR,
        DbtResource,
        dbt_executable,
        dbt_project,
    )
    from pipeline_platform.resources.warehouse import DuckDBWarehouse, RedshiftWarehouse

    cloud = cloud_resource(settings)
    by_environment: dict[Environment, Any] = {}
    if settings.environment is Environment.LOCAL:
        # dbt runs inside the project folder, so the profile needs an absolute path.
        path = str(Path(settings.warehouse_path).resolve())
        by_environment[Environment.LOCAL] = (
            DuckDBWarehouse(path=path),
            {ENV_WAREHOUSE_PATH: path},
        )
    else:
        rs = settings.redshift
        if rs is None:
            raise SettingMissing(
                f"the {ANALYTICS_STACK} stack was deployed with DeployWarehouse=false, so there "
                "is no Redshift warehouse to load; redeploy it with DeployWarehouse=true"
            )
        by_environment[Environment.AWS] = (
            RedshiftWarehouse(
                host=rs.host,
                port=rs.port,
                database=rs.database,
                copy_role_arn=rs.copy_role_arn,
                secret_arn=rs.secret_arn,
                region=settings.region,
            ),
            {
                "REDSHIFT_HOST": rs.host,
                "REDSHIFT_PORT": str(rs.port),
                "REDSHIFT_DATABASE": rs.database,
                "AWS_REGION": settings.region,
            },
        )
    warehouse, dbt_env = by_environment[settings.environment]
    project = dbt_project(settings.dbt_target)
    return {
        "cloud": cloud,
        "warehouse": warehouse,
        "dbt": DbtResource(
            project_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
            target=project.target,
            env_overrides=dbt_env,
        ),
    }
