"""Dagster resources: the cloud (AWS or the local emulator), the warehouse and dbt.

`build_resources()` is the one place that maps an environment to resources:
LOCAL = the emulator and the DuckDB warehouse, AWS = AWS and the Redshift
warehouse. It asks AWS nothing: what needs AWS resolves when a run starts.
"""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from pipeline_platform.environment import Environment, aws_location, dbt_target, warehouse_path
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.dbt import dbt_resource
from pipeline_platform.resources.warehouse import DuckDBWarehouse, RedshiftWarehouse, Warehouse


def cloud_resource() -> CloudResource:
    """The AWS side of the current environment: its endpoint, region and (at run time) names."""
    location = aws_location()
    return CloudResource(
        s3=S3Resource(region_name=location.region, endpoint_url=location.endpoint_url)
    )


def build_resources(environment: Environment) -> dict[str, Any]:
    """Resources for `environment`, keyed as the assets require them."""
    location = aws_location()
    warehouse: Warehouse
    if environment is Environment.LOCAL:
        warehouse = DuckDBWarehouse(path=warehouse_path())
    else:
        warehouse = RedshiftWarehouse(secrets=SecretsManagerResource(region_name=location.region))
    return {
        "cloud": cloud_resource(),
        "warehouse": warehouse,
        "dbt": dbt_resource(dbt_target(environment)),
    }
