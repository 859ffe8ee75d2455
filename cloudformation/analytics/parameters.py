"""The analytics stack's parameters and the conditions derived from them, declared together.

Five parameters carry the streaming stack's outputs (the deployer passes them
on); the rest size the warehouse and say who runs the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Not, Parameter, Ref, Template

from cloudformation.parameters import KEY_PREFIX_PATTERN, choice, number, text

# Condition names, so a resource's `Condition`/`If` and the declaration below name the same one.
DEPLOY_WAREHOUSE = "DeployWarehouse"
IS_MULTI_NODE = "IsMultiNode"
HAS_ORCHESTRATOR_PRINCIPAL = "HasOrchestratorPrincipal"


@dataclass(frozen=True)
class StreamingStackOutputs:
    """The streaming stack's outputs this stack reads (the deployer passes them on)."""

    table_arn: Parameter
    quarantine_bucket: Parameter
    quarantine_prefix: Parameter
    data_key_arn: Parameter
    access_log_bucket: Parameter


@dataclass(frozen=True)
class WarehouseParameters:
    """Whether there is a cluster, and its network, size, database and admin."""

    deploy: Parameter
    subnets: Parameter
    security_groups: Parameter
    node_type: Parameter
    node_count: Parameter
    database_name: Parameter
    admin_user: Parameter


@dataclass(frozen=True)
class AnalyticsParameters:
    """The analytics stack's parameters, grouped by where their values come from."""

    streaming: StreamingStackOutputs
    warehouse: WarehouseParameters
    orchestrator_principal: Parameter


def declare_parameters(t: Template) -> AnalyticsParameters:
    """Add the analytics stack's parameters and conditions to `t`; return the parameters."""
    params = AnalyticsParameters(
        streaming=_streaming_stack_outputs(t),
        warehouse=_warehouse(t),
        orchestrator_principal=text(
            t,
            "OrchestratorPrincipalArn",
            "IAM principal allowed to assume the orchestrator role; empty means this account.",
            default="",
            pattern=r"^(arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+))?$",
        ),
    )
    t.add_condition(DEPLOY_WAREHOUSE, Equals(Ref(params.warehouse.deploy), "true"))
    t.add_condition(IS_MULTI_NODE, Not(Equals(Ref(params.warehouse.node_count), 1)))
    t.add_condition(HAS_ORCHESTRATOR_PRINCIPAL, Not(Equals(Ref(params.orchestrator_principal), "")))
    return params


def _streaming_stack_outputs(t: Template) -> StreamingStackOutputs:
    """Declare the parameters that carry the streaming stack's outputs."""
    return StreamingStackOutputs(
        table_arn=text(
            t,
            "TableArn",
            "ARN of the readings table (the streaming stack's TableArn output).",
            pattern=r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]+$",
        ),
        quarantine_bucket=text(
            t,
            "QuarantineBucketName",
            "Bucket of quarantined records (the streaming stack's QuarantineBucketName output).",
        ),
        quarantine_prefix=text(
            t,
            "QuarantinePrefix",
            "Key prefix of quarantined records (the streaming stack's QuarantinePrefix output).",
            pattern=KEY_PREFIX_PATTERN,
        ),
        data_key_arn=text(
            t,
            "DataKeyArn",
            "KMS key of the table and quarantine bucket (the streaming stack's DataKeyArn output).",
            pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$",
        ),
        access_log_bucket=text(
            t,
            "AccessLogBucketName",
            "Bucket receiving S3 access logs (the streaming stack's AccessLogBucketName output).",
        ),
    )


def _warehouse(t: Template) -> WarehouseParameters:
    """Declare the warehouse's parameters."""
    return WarehouseParameters(
        deploy=choice(
            t,
            "DeployWarehouse",
            "true",
            ["true", "false"],
            "Create the Redshift cluster; false where another warehouse stands in (the local "
            "cloud).",
        ),
        subnets=t.add_parameter(
            Parameter(
                "SubnetIds",
                Type="List<AWS::EC2::Subnet::Id>",
                Description="Private subnets for the Redshift cluster.",
            )
        ),
        security_groups=t.add_parameter(
            Parameter(
                "SecurityGroupIds",
                Type="List<AWS::EC2::SecurityGroup::Id>",
                Description="Security groups letting the orchestrator reach the warehouse port "
                "(5439).",
            )
        ),
        node_type=text(
            t,
            "RedshiftNodeType",
            "Redshift node type.",
            default="ra3.large",
            pattern=r"^ra3\.[a-z0-9]+$",
        ),
        node_count=number(
            t,
            "RedshiftNodeCount",
            1,
            "Redshift nodes; 1 makes a single-node cluster.",
            minimum=1,
            maximum=100,
        ),
        database_name=text(
            t,
            "RedshiftDatabaseName",
            "Warehouse database name.",
            default="iot",
            pattern=r"^[a-z][a-z0-9_]{0,63}$",
        ),
        admin_user=text(
            t,
            "RedshiftAdminUsername",
            "Warehouse admin user; its password is generated and kept in Secrets Manager.",
            default="iotadmin",
            pattern=r"^[a-z][a-z0-9_]{0,127}$",
        ),
    )
