"""Dagster's storage: a private, encrypted RDS PostgreSQL instance whose password RDS manages.

Runs, the event log and schedule state live here (dagster-postgres). The admin password
is generated and kept by RDS in Secrets Manager (`ManageMasterUserPassword`), encrypted
with the orchestration key; the tasks receive it as ECS secrets, so it is never in the
template, an environment variable's value or the image. A single-AZ db.t4g.micro is
the default: Dagster's storage is small, and a lost zone costs only the hours until the
instance is back (the lake and warehouse hold the data, Dagster the run history).
"""

from __future__ import annotations

from troposphere import AWSHelperFn, GetAtt, Ref, Template
from troposphere.rds import DBInstance, DBParameterGroup, DBSubnetGroup, MasterUserSecret

from cloudformation.naming import Naming
from cloudformation.orchestration.parameters import OrchestrationParameters
from cloudformation.parameters import skip

ENGINE = "postgres"
ENGINE_VERSION = "17.11"
PARAMETER_GROUP_FAMILY = "postgres17"
DATABASE_NAME = "dagster"
ADMIN_USER = "dagster"
BACKUP_RETENTION_DAYS = 7
#: The secret RDS keeps the credentials in holds them as these JSON keys.
SECRET_USERNAME_KEY = "username"
SECRET_PASSWORD_KEY = "password"


def add_database(
    t: Template,
    naming: Naming,
    params: OrchestrationParameters,
    *,
    security_group: AWSHelperFn,
    key_arn: AWSHelperFn,
) -> DBInstance:
    """Add the database instance with its subnet and parameter groups."""
    subnets = t.add_resource(
        DBSubnetGroup(
            "DatabaseSubnetGroup",
            DBSubnetGroupDescription="Private subnets of Dagster's database.",
            SubnetIds=Ref(params.subnets),
        )
    )
    settings = t.add_resource(
        DBParameterGroup(
            "DatabaseParameterGroup",
            Description="Dagster's database: TLS only, connections and slow statements logged.",
            Family=PARAMETER_GROUP_FAMILY,
            Parameters={
                "rds.force_ssl": "1",
                "log_connections": "1",
                "log_min_duration_statement": "1000",
            },
        )
    )
    return t.add_resource(
        DBInstance(
            "DagsterDatabase",
            DBInstanceIdentifier=naming.dagster_database,
            Engine=ENGINE,
            EngineVersion=ENGINE_VERSION,
            DBInstanceClass=Ref(params.database_class),
            AllocatedStorage=Ref(params.database_storage_gib),
            MaxAllocatedStorage=1000,
            StorageType="gp3",
            StorageEncrypted=True,
            KmsKeyId=key_arn,
            DBName=DATABASE_NAME,
            MasterUsername=ADMIN_USER,
            ManageMasterUserPassword=True,
            MasterUserSecret=MasterUserSecret(KmsKeyId=key_arn),
            DBSubnetGroupName=Ref(subnets),
            DBParameterGroupName=Ref(settings),
            VPCSecurityGroups=[security_group],
            PubliclyAccessible=False,
            MultiAZ=False,
            BackupRetentionPeriod=BACKUP_RETENTION_DAYS,
            CopyTagsToSnapshot=True,
            AutoMinorVersionUpgrade=True,
            EnableCloudwatchLogsExports=["postgresql"],
            # `stack destroy` deletes the instance and keeps a final snapshot of it.
            DeletionProtection=False,
            DeletionPolicy="Snapshot",
            UpdateReplacePolicy="Snapshot",
            Metadata={
                "checkov": {
                    "skip": [
                        skip(
                            "CKV_AWS_157",
                            "Single-AZ by choice: Dagster's run history is rebuilt from "
                            "nothing it cannot lose (the lake and warehouse hold the data), "
                            "and Multi-AZ doubles the largest always-on cost.",
                        ),
                        skip(
                            "CKV_AWS_161",
                            "Dagster connects with the managed password from Secrets "
                            "Manager; dagster-postgres cannot renew IAM tokens, which "
                            "expire every 15 minutes.",
                        ),
                        skip(
                            "CKV_AWS_118",
                            "Enhanced monitoring's per-second OS metrics are not needed for "
                            "Dagster's small storage; RDS's CloudWatch metrics and the "
                            "exported PostgreSQL log remain.",
                        ),
                    ]
                }
            },
        )
    )


def secret_arn(database: DBInstance) -> GetAtt:
    """The ARN of the Secrets Manager secret RDS keeps the credentials in."""
    return GetAtt(database, "MasterUserSecret.SecretArn")
