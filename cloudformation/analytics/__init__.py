"""The analytics stack: the Parquet lake, the Glue catalog and crawler, Redshift, the orchestrator.

`build_analytics` only assembles; each concern is a module of its own:
`parameters` (every parameter and condition), `encryption` (the lake key),
`lake` (the bucket and its prefixes), `catalog` (Glue database and crawler),
`warehouse` (the Redshift cluster) and `roles` (COPY, orchestrator).
"""

from __future__ import annotations

from troposphere import AWSHelperFn, GetAtt, If, Ref, Select, Template

from cloudformation.analytics.catalog import CRAWLER_EXCLUSIONS, add_catalog
from cloudformation.analytics.encryption import add_lake_key
from cloudformation.analytics.lake import EXPORTS_PREFIX, LAKE_PREFIX, add_lake_bucket
from cloudformation.analytics.parameters import DEPLOY_WAREHOUSE, declare_parameters
from cloudformation.analytics.roles import add_copy_role, add_orchestrator_role
from cloudformation.analytics.warehouse import add_warehouse, admin_secret_arn
from cloudformation.kms import key_arn
from cloudformation.naming import NO_WAREHOUSE, Naming
from cloudformation.outputs import AnalyticsOutput
from cloudformation.parameters import export_outputs

__all__ = ["CRAWLER_EXCLUSIONS", "EXPORTS_PREFIX", "LAKE_PREFIX", "build_analytics"]


def build_analytics(naming: Naming) -> Template:
    """The analytics stack's template for one environment and region."""
    t = Template(
        Description=f"IoT analytics ({naming.env}, {naming.region}): Parquet lake, Glue catalog "
        "and crawler, a Redshift cluster, and the orchestrator's role."
    )
    params = declare_parameters(t)
    lake_key = key_arn(add_lake_key(t, naming))
    lake = add_lake_bucket(
        t, naming, lake_key, access_log_bucket=params.streaming.access_log_bucket
    )
    add_catalog(t, naming, lake=lake, key_arn=lake_key)
    copy_role = add_copy_role(t, naming, lake=lake, key_arn=lake_key)
    cluster = add_warehouse(t, naming, params.warehouse, copy_role=copy_role, key_arn=lake_key)
    orchestrator = add_orchestrator_role(
        t, naming, params, lake=lake, key_arn=lake_key, cluster=cluster
    )

    export_outputs(
        t,
        {
            AnalyticsOutput.LAKE_BUCKET_NAME: (
                Ref(lake),
                "Bucket of table exports and the Parquet lake.",
            ),
            AnalyticsOutput.EXPORTS_PREFIX: (EXPORTS_PREFIX, "Key prefix of DynamoDB exports."),
            AnalyticsOutput.LAKE_PREFIX: (LAKE_PREFIX, "Key prefix of the Parquet lake."),
            AnalyticsOutput.LAKE_KEY_ARN: (lake_key, "KMS key encrypting the lake."),
            # Literal names: the same values as Ref, and they resolve where the emulator skips
            # Glue.
            AnalyticsOutput.GLUE_DATABASE_NAME: (
                naming.glue_database,
                "Glue Data Catalog database of the lake.",
            ),
            AnalyticsOutput.CRAWLER_NAME: (naming.crawler, "Glue crawler over the lake."),
            AnalyticsOutput.REDSHIFT_DATABASE_NAME: (
                Ref(params.warehouse.database_name),
                "Warehouse database.",
            ),
            AnalyticsOutput.REDSHIFT_COPY_ROLE_ARN: (
                GetAtt(copy_role, "Arn"),
                "IAM role COPY uses to read the lake.",
            ),
            AnalyticsOutput.ORCHESTRATOR_ROLE_ARN: (
                GetAtt(orchestrator, "Arn"),
                "Role the pipeline runs as.",
            ),
        },
    )
    warehouse_outputs: dict[str, tuple[AWSHelperFn, str]] = {
        AnalyticsOutput.REDSHIFT_CLUSTER_IDENTIFIER: (Ref(cluster), "Redshift cluster."),
        AnalyticsOutput.REDSHIFT_ENDPOINT_ADDRESS: (
            GetAtt(cluster, "Endpoint.Address"),
            "Warehouse host name.",
        ),
        AnalyticsOutput.REDSHIFT_PORT: (GetAtt(cluster, "Endpoint.Port"), "Warehouse port."),
        AnalyticsOutput.REDSHIFT_SECRET_ARN: (
            admin_secret_arn(cluster),
            "Secrets Manager secret with the admin credentials.",
        ),
        AnalyticsOutput.WAREHOUSE_SECURITY_GROUP_ID: (
            Select(0, Ref(params.warehouse.security_groups)),
            "Security group the orchestrator's tasks are let into the warehouse by.",
        ),
    }
    # If rather than an output Condition: the keys stay the same whether or not the cluster
    # exists (and the emulator mishandles conditional exports).
    export_outputs(
        t,
        {
            key: (If(DEPLOY_WAREHOUSE, value, NO_WAREHOUSE), description)
            for key, (value, description) in warehouse_outputs.items()
        },
    )
    return t
