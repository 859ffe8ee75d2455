"""The orchestration stack's parameters and the conditions derived from them, declared together.

The deployer fills in the ones that carry the other stacks' outputs, the image tag and,
on the first deploy, the first write day; the user gives the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Not, Parameter, Ref, Template

from cloudformation.layout import COMPUTE_LOGS_EXPIRE_DAYS
from cloudformation.naming import NO_WAREHOUSE
from cloudformation.parameters import number, text
from cloudformation.streaming.parameters import LOG_RETENTION_DAYS

# Condition names, so a resource's `Condition`/`If` and the declaration below name the same one.
HAS_IMAGE = "HasImage"
HAS_WAREHOUSE = "HasWarehouse"
#: The image tag before the first image is built: the services run no task until then.
NO_IMAGE = "not-built"


@dataclass(frozen=True)
class OtherStacksOutputs:
    """The streaming and analytics stacks' outputs this stack reads (the deployer passes them)."""

    alarm_topic_arn: Parameter
    data_key_arn: Parameter
    orchestrator_role_arn: Parameter
    lake_bucket: Parameter
    lake_key_arn: Parameter
    warehouse_security_group: Parameter


@dataclass(frozen=True)
class OrchestrationParameters:
    """The orchestration stack's parameters, grouped by where their values come from."""

    stacks: OtherStacksOutputs
    vpc: Parameter
    subnets: Parameter
    image_tag: Parameter
    first_write_day: Parameter
    database_class: Parameter
    database_storage_gib: Parameter
    log_retention_days: Parameter


def declare_parameters(t: Template) -> OrchestrationParameters:
    """Add the orchestration stack's parameters and conditions to `t`; return the parameters."""
    params = OrchestrationParameters(
        stacks=_other_stacks_outputs(t),
        vpc=t.add_parameter(
            Parameter(
                "VpcId",
                Type="AWS::EC2::VPC::Id",
                Description="VPC of the private subnets (the security groups belong to it).",
            )
        ),
        subnets=t.add_parameter(
            Parameter(
                "SubnetIds",
                Type="List<AWS::EC2::Subnet::Id>",
                Description="Private subnets (two or more, in different zones) of the Dagster "
                "tasks and database; they reach AWS's APIs through a NAT gateway or VPC endpoints.",
            )
        ),
        image_tag=text(
            t,
            "ImageTag",
            "The image the tasks run: the sha256 of the source archive it was built from (set "
            f"by deploy). {NO_IMAGE} runs no task.",
            default=NO_IMAGE,
            pattern=rf"^([0-9a-f]{{64}}|{NO_IMAGE})$",
        ),
        first_write_day=text(
            t,
            "FirstWriteDay",
            "The first UTC day of the batch side's write windows (YYYY-MM-DD): the day of the "
            "first deploy unless given.",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
        ),
        database_class=text(
            t,
            "DatabaseInstanceClass",
            "RDS instance class of Dagster's PostgreSQL database.",
            default="db.t4g.micro",
            pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        ),
        database_storage_gib=number(
            t,
            "DatabaseStorageGiB",
            20,
            "Storage of Dagster's database, GiB (it grows by itself up to ten times this).",
            minimum=20,
            maximum=1000,
        ),
        log_retention_days=t.add_parameter(
            Parameter(
                "LogRetentionDays",
                Type="Number",
                # As long as the runs' step output in the lake bucket, by default.
                Default=COMPUTE_LOGS_EXPIRE_DAYS,
                AllowedValues=list(LOG_RETENTION_DAYS),
                Description="Days the Dagster tasks' and the image builds' logs are kept.",
            )
        ),
    )
    t.add_condition(HAS_IMAGE, Not(Equals(Ref(params.image_tag), NO_IMAGE)))
    t.add_condition(
        HAS_WAREHOUSE, Not(Equals(Ref(params.stacks.warehouse_security_group), NO_WAREHOUSE))
    )
    return params


def _other_stacks_outputs(t: Template) -> OtherStacksOutputs:
    """Declare the parameters named after the streaming and analytics outputs they carry."""
    return OtherStacksOutputs(
        alarm_topic_arn=text(
            t,
            "AlarmTopicArn",
            "SNS topic failed runs and a silent daemon notify (the streaming stack's output).",
            pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$",
        ),
        data_key_arn=text(
            t,
            "DataKeyArn",
            "KMS key of the alarm topic (the streaming stack's DataKeyArn output).",
            pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$",
        ),
        orchestrator_role_arn=text(
            t,
            "OrchestratorRoleArn",
            "The role every run's task runs as (the analytics stack's output).",
            pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$",
        ),
        lake_bucket=text(
            t,
            "LakeBucketName",
            "Lake bucket; runs' compute logs go under its pipeline/ prefix (the analytics "
            "stack's output).",
        ),
        lake_key_arn=text(
            t,
            "LakeKeyArn",
            "KMS key of the lake bucket (the analytics stack's output).",
            pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$",
        ),
        warehouse_security_group=text(
            t,
            "WarehouseSecurityGroupId",
            f"Security group of the warehouse, or {NO_WAREHOUSE} (the analytics stack's output).",
            pattern=rf"^(sg-[0-9a-f]+|{NO_WAREHOUSE})$",
        ),
    )
