"""The resources of an environment: the one place that maps an environment to resources.

LOCAL = the emulator and the DuckDB warehouse, AWS = AWS and the Redshift
warehouse; dbt runs the target of the warehouse. It asks AWS nothing: what
needs AWS resolves when a run starts.
"""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from pipeline_platform.environment import Environment, aws_location, warehouse_path
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.dbt import dbt_resource
from pipeline_platform.resources.warehouse import DuckDBWarehouse, RedshiftWarehouse, Warehouse


def cloud_resource() -> CloudResource:
    """The AWS side of the current environment: its endpoint, region and (at run time) names."""
    location = aws_location()
    return CloudResource(
        s3=S3Resource(region_name=location.region, endpoint_url=location.endpoint_url)
    )


def environment_warehouse(environment: Environment) -> Warehouse:
    """The warehouse of `environment`: the DuckDB file locally, Redshift on AWS."""
    if environment is Environment.LOCAL:
        return DuckDBWarehouse(path=warehouse_path())
    return RedshiftWarehouse(secrets=SecretsManagerResource(region_name=aws_location().region))


def build_resources(environment: Environment, warehouse: Warehouse | None = None) -> dict[str, Any]:
    """Resources for `environment`, keyed as the assets require them; dbt builds on the
    target of `warehouse` (default: the environment's)."""
    warehouse = warehouse or environment_warehouse(environment)
    return {
        "cloud": cloud_resource(),
        "warehouse": warehouse,
        "dbt": dbt_resource(warehouse.dbt_target),
    }
