"""The warehouse: a provisioned Redshift cluster, its subnet and parameter groups.

Redshift is a provisioned cluster (as in the seed), not Serverless. Serverless would
suit a once-a-day load better on cost, but CloudFormation does not return the ARN of
the admin secret that `ManageAdminPassword` creates for a Serverless namespace, and
the pipeline reads that ARN from this stack's outputs; a cluster with
`ManageMasterPassword` exposes it as `MasterPasswordSecretArn`. A single ra3.large
node is the default; the cluster is encrypted with the lake key, private, in the
subnets given as parameters, and requires TLS. Everything here exists only under
the `DeployWarehouse` condition.
"""

from __future__ import annotations

from troposphere import AWSHelperFn, GetAtt, If, NoValue, Ref, Template, iam
from troposphere.redshift import (
    AmazonRedshiftParameter,
    Cluster,
    ClusterParameterGroup,
    ClusterSubnetGroup,
    LoggingProperties,
)

from cloudformation.analytics.parameters import (
    DEPLOY_WAREHOUSE,
    IS_MULTI_NODE,
    WarehouseParameters,
)
from cloudformation.naming import Naming
from cloudformation.parameters import skip

REDSHIFT_LOG_EXPORTS = ["userlog", "connectionlog", "useractivitylog"]
SNAPSHOT_RETENTION_DAYS = 7


def add_warehouse(
    t: Template,
    naming: Naming,
    params: WarehouseParameters,
    *,
    copy_role: iam.Role,
    key_arn: AWSHelperFn,
) -> Cluster:
    """Add the cluster (COPY reads the lake as `copy_role`); its admin secret is managed."""
    subnet_group = t.add_resource(
        ClusterSubnetGroup(
            "RedshiftSubnetGroup",
            Condition=DEPLOY_WAREHOUSE,
            Description="Private subnets of the warehouse.",
            SubnetIds=Ref(params.subnets),
        )
    )
    parameter_group = t.add_resource(
        ClusterParameterGroup(
            "RedshiftParameterGroup",
            Condition=DEPLOY_WAREHOUSE,
            Description="Warehouse settings: TLS only, user activity logged.",
            ParameterGroupFamily="redshift-1.0",
            Parameters=[
                AmazonRedshiftParameter(ParameterName="require_ssl", ParameterValue="true"),
                AmazonRedshiftParameter(
                    ParameterName="enable_user_activity_logging", ParameterValue="true"
                ),
            ],
        )
    )
    return t.add_resource(
        Cluster(
            "RedshiftCluster",
            Condition=DEPLOY_WAREHOUSE,
            ClusterIdentifier=naming.redshift_cluster,
            ClusterType=If(IS_MULTI_NODE, "multi-node", "single-node"),
            NodeType=Ref(params.node_type),
            NumberOfNodes=If(IS_MULTI_NODE, Ref(params.node_count), NoValue),
            DBName=Ref(params.database_name),
            MasterUsername=Ref(params.admin_user),
            ManageMasterPassword=True,
            MasterPasswordSecretKmsKeyId=key_arn,
            Encrypted=True,
            KmsKeyId=key_arn,
            PubliclyAccessible=False,
            EnhancedVpcRouting=True,
            ClusterSubnetGroupName=Ref(subnet_group),
            ClusterParameterGroupName=Ref(parameter_group),
            VpcSecurityGroupIds=Ref(params.security_groups),
            IamRoles=[GetAtt(copy_role, "Arn")],
            AutomatedSnapshotRetentionPeriod=SNAPSHOT_RETENTION_DAYS,
            AllowVersionUpgrade=True,
            LoggingProperties=LoggingProperties(
                LogDestinationType="cloudwatch", LogExports=REDSHIFT_LOG_EXPORTS
            ),
            Metadata={
                "checkov": {
                    "skip": [
                        skip(
                            "CKV_AWS_71",
                            "Audit logging is on, delivered to CloudWatch Logs "
                            "(LogDestinationType cloudwatch); the check only looks for an S3 "
                            "BucketName.",
                        )
                    ]
                }
            },
        )
    )


def admin_secret_arn(cluster: Cluster) -> GetAtt:
    """The ARN of the Secrets Manager secret Redshift keeps the admin credentials in."""
    return GetAtt(cluster, "MasterPasswordSecretArn")
