"""The analytics stack: the Parquet lake, the Glue catalog and crawler, Redshift, the orchestrator.

Redshift is a provisioned cluster (as in the seed), not Serverless. Serverless would
suit a once-a-day load better on cost, but CloudFormation does not return the ARN of
the admin secret that `ManageAdminPassword` creates for a Serverless namespace, and
the pipeline reads that ARN from this stack's outputs; a cluster with
`ManageMasterPassword` exposes it as `MasterPasswordSecretArn`. A single ra3.large
node is the default; the cluster is encrypted with the lake key, private, in the
subnets given as parameters, and requires TLS.
"""

from __future__ import annotations

import json

from awacs import cloudformation as cfna
from awacs import cloudwatch as cwa
from awacs import dynamodb as ddb
from awacs import glue as gluea
from awacs import kms as kmsa
from awacs import logs as logsa
from awacs import redshift
from awacs import s3 as s3a
from awacs import secretsmanager as sm
from awacs.aws import ArnLike, Condition, Principal, Statement, StringLike
from awacs.sts import AssumeRole
from troposphere import Equals, GetAtt, If, Join, Not, Parameter, Ref, Sub, Template, iam
from troposphere.glue import (
    CloudWatchEncryption,
    Crawler,
    Database,
    DatabaseInput,
    EncryptionConfiguration,
    JobBookmarksEncryption,
    RecrawlPolicy,
    S3Encryption,
    S3Target,
    SchemaChangePolicy,
    SecurityConfiguration,
    Targets,
)
from troposphere.redshift import (
    AmazonRedshiftParameter,
    Cluster,
    ClusterParameterGroup,
    ClusterSubnetGroup,
    LoggingProperties,
)

from cloudformation.buckets import BucketSpec, hardened_bucket, objects_under
from cloudformation.iam import NO_RESOURCE_TYPE, allow, arn, document, global_arn, service_role
from cloudformation.kms import USE_ACTIONS, customer_key, key_arn, service_statement
from cloudformation.layout import EXPORTS_PREFIX, LAKE_PREFIX, PIPELINE_PREFIX, RULE_ERRORS_PREFIX
from cloudformation.naming import NO_WAREHOUSE, Naming
from cloudformation.outputs import AnalyticsOutput
from cloudformation.parameters import (
    KEY_PREFIX_PATTERN,
    choice,
    export_output,
    number,
    skip,
    text,
)

#: Files a crawl must never read as data: export manifests, checksums and markers.
CRAWLER_EXCLUSIONS = (
    "**/manifest-*.json",
    "**/manifest-*",
    "**/_started",
    "**/*.md5",
    "**/_SUCCESS",
    "**/*.crc",
    "**/_temporary/**",
    "**/.*",
)
#: Tables are the folders under `lake/` (`s3://bucket/lake/<table>/` is level 3), so
#: `dt=` folders below them stay partitions of one table instead of tables of their own.
CRAWLER_CONFIGURATION = {
    "Version": 1.0,
    "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas", "TableLevelConfiguration": 3},
    "CrawlerOutput": {
        "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
        "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
    },
}
REDSHIFT_LOG_EXPORTS = ["userlog", "connectionlog", "useractivitylog"]


def build_analytics(naming: Naming) -> Template:
    """The analytics stack's template for one environment and region."""
    t = Template(
        Description=f"IoT analytics ({naming.env}, {naming.region}): Parquet lake, Glue catalog "
        "and crawler, a Redshift cluster, and the orchestrator's role."
    )

    # --- Parameters -------------------------------------------------------
    table_arn = text(
        t,
        "TableArn",
        "ARN of the readings table (the streaming stack's TableArn output).",
        pattern=r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]+$",
    )
    quarantine_bucket = text(
        t,
        "QuarantineBucketName",
        "Bucket of quarantined records (the streaming stack's QuarantineBucketName output).",
    )
    quarantine_prefix = text(
        t,
        "QuarantinePrefix",
        "Key prefix of quarantined records (the streaming stack's QuarantinePrefix output).",
        pattern=KEY_PREFIX_PATTERN,
    )
    data_key_arn = text(
        t,
        "DataKeyArn",
        "KMS key of the table and quarantine bucket (the streaming stack's DataKeyArn output).",
        pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$",
    )
    access_log_bucket = text(
        t,
        "AccessLogBucketName",
        "Bucket receiving S3 access logs (the streaming stack's AccessLogBucketName output).",
    )
    subnets = t.add_parameter(
        Parameter(
            "SubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="Private subnets for the Redshift cluster.",
        )
    )
    security_groups = t.add_parameter(
        Parameter(
            "SecurityGroupIds",
            Type="List<AWS::EC2::SecurityGroup::Id>",
            Description="Security groups letting the orchestrator reach the warehouse port (5439).",
        )
    )
    node_type = text(
        t,
        "RedshiftNodeType",
        "Redshift node type.",
        default="ra3.large",
        pattern=r"^ra3\.[a-z0-9]+$",
    )
    node_count = number(
        t,
        "RedshiftNodeCount",
        1,
        "Redshift nodes; 1 makes a single-node cluster.",
        minimum=1,
        maximum=100,
    )
    database_name = text(
        t,
        "RedshiftDatabaseName",
        "Warehouse database name.",
        default="iot",
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
    )
    admin_user = text(
        t,
        "RedshiftAdminUsername",
        "Warehouse admin user; its password is generated and kept in Secrets Manager.",
        default="iotadmin",
        pattern=r"^[a-z][a-z0-9_]{0,127}$",
    )
    orchestrator_principal = text(
        t,
        "OrchestratorPrincipalArn",
        "IAM principal allowed to assume the orchestrator role; empty means this account.",
        default="",
        pattern=r"^(arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+))?$",
    )
    deploy_warehouse = choice(
        t,
        "DeployWarehouse",
        "true",
        ["true", "false"],
        "Create the Redshift cluster; false where another warehouse stands in (the local cloud).",
    )
    t.add_condition("DeployWarehouse", Equals(Ref(deploy_warehouse), "true"))
    t.add_condition("IsMultiNode", Not(Equals(Ref(node_count), 1)))
    t.add_condition("HasOrchestratorPrincipal", Not(Equals(Ref(orchestrator_principal), "")))

    # --- Encryption -------------------------------------------------------
    key = customer_key(
        t,
        "LakeKey",
        alias=naming.name("kms", "lake"),
        description=f"Encrypts the {naming.env} lake, crawler logs and the Redshift cluster.",
        service_statements=[
            service_statement(
                "CloudWatchLogsEncryptsCrawlerLogs",
                Sub("logs.${AWS::Region}.amazonaws.com"),
                [*USE_ACTIONS, kmsa.Encrypt, kmsa.DescribeKey],
                condition=Condition(
                    ArnLike(
                        "kms:EncryptionContext:aws:logs:arn", arn("logs", "log-group:/aws-glue/*")
                    )
                ),
            )
        ],
    )
    key_arn_ = key_arn(key)

    # --- Lake -------------------------------------------------------------
    lake = hardened_bucket(
        t,
        BucketSpec(
            title="LakeBucket",
            name=Sub(naming.bucket_sub("lake")),
            description="DynamoDB exports and the partitioned Parquet lake.",
            kms_key_arn=key_arn_,
            log_bucket=Ref(access_log_bucket),
            log_prefix="lake/",
        ),
    )
    lake_arn = GetAtt(lake, "Arn")

    # --- Catalog ----------------------------------------------------------
    database = t.add_resource(
        Database(
            "GlueDatabase",
            CatalogId=Ref("AWS::AccountId"),
            DatabaseInput=DatabaseInput(
                Name=naming.glue_database,
                Description="Sensor readings and quarantined records in the Parquet lake.",
            ),
        )
    )
    security_configuration_name = naming.name("gluesecurity", "lake")
    t.add_resource(
        SecurityConfiguration(
            "GlueSecurityConfiguration",
            Name=security_configuration_name,
            EncryptionConfiguration=EncryptionConfiguration(
                S3Encryptions=[S3Encryption(S3EncryptionMode="SSE-KMS", KmsKeyArn=key_arn_)],
                CloudWatchEncryption=CloudWatchEncryption(
                    CloudWatchEncryptionMode="SSE-KMS", KmsKeyArn=key_arn_
                ),
                JobBookmarksEncryption=JobBookmarksEncryption(
                    JobBookmarksEncryptionMode="CSE-KMS", KmsKeyArn=key_arn_
                ),
            ),
        )
    )
    catalog_resources = [
        arn("glue", "catalog"),
        arn("glue", f"database/{naming.glue_database}"),
        arn("glue", f"table/{naming.glue_database}/*"),
    ]
    crawler_role = t.add_resource(
        service_role(
            "CrawlerRole",
            role_name=naming.name("role", "crawler"),
            service="glue.amazonaws.com",
            policy_name="lake-crawler",
            description="Lets the crawler read the lake and keep its catalog tables current.",
            statements=[
                allow([s3a.GetObject], [objects_under(lake, LAKE_PREFIX)], sid="ReadTheLake"),
                _list_prefixes(lake_arn, [LAKE_PREFIX]),
                allow(
                    [
                        gluea.GetDatabase,
                        gluea.GetTable,
                        gluea.GetTables,
                        gluea.CreateTable,
                        gluea.UpdateTable,
                        gluea.GetPartition,
                        gluea.GetPartitions,
                        gluea.BatchGetPartition,
                        gluea.CreatePartition,
                        gluea.BatchCreatePartition,
                        gluea.UpdatePartition,
                        gluea.BatchUpdatePartition,
                    ],
                    catalog_resources,
                    sid="MaintainCatalogTables",
                ),
                allow(
                    [
                        logsa.CreateLogGroup,
                        logsa.CreateLogStream,
                        logsa.PutLogEvents,
                        logsa.AssociateKmsKey,
                    ],
                    [arn("logs", "log-group:/aws-glue/crawlers*")],
                    sid="WriteCrawlerLogs",
                ),
                allow(USE_ACTIONS, [key_arn_], sid="UseTheLakeKey"),
            ],
        )
    )
    t.add_resource(
        Crawler(
            "LakeCrawler",
            DependsOn=["GlueSecurityConfiguration"],
            Name=naming.crawler,
            Description="Keeps the catalog tables of the Parquet lake current.",
            Role=GetAtt(crawler_role, "Arn"),
            DatabaseName=Ref(database),
            CrawlerSecurityConfiguration=security_configuration_name,
            Targets=Targets(
                S3Targets=[
                    S3Target(
                        Path=Sub(f"s3://${{{lake.title}}}/{LAKE_PREFIX}"),
                        Exclusions=list(CRAWLER_EXCLUSIONS),
                    )
                ]
            ),
            SchemaChangePolicy=SchemaChangePolicy(
                UpdateBehavior="UPDATE_IN_DATABASE", DeleteBehavior="LOG"
            ),
            RecrawlPolicy=RecrawlPolicy(RecrawlBehavior="CRAWL_EVERYTHING"),
            Configuration=json.dumps(CRAWLER_CONFIGURATION, sort_keys=True),
        )
    )

    # --- Warehouse --------------------------------------------------------
    copy_role = t.add_resource(
        iam.Role(
            "RedshiftCopyRole",
            RoleName=naming.name("role", "redshiftcopy"),
            Description="Lets Redshift COPY read the lake's Parquet.",
            AssumeRolePolicyDocument=document(
                [
                    Statement(
                        Effect="Allow",
                        Action=[AssumeRole],
                        Principal=Principal("Service", "redshift.amazonaws.com"),
                    )
                ]
            ),
            Policies=[
                iam.Policy(
                    PolicyName="copy-from-lake",
                    PolicyDocument=document(
                        [
                            allow(
                                [s3a.GetObject],
                                [objects_under(lake, LAKE_PREFIX)],
                                sid="ReadLakeParquet",
                            ),
                            # Each load is one COPY from a manifest of the files it takes.
                            allow(
                                [s3a.GetObject],
                                [objects_under(lake, f"{PIPELINE_PREFIX}manifests/")],
                                sid="ReadCopyManifests",
                            ),
                            _list_prefixes(lake_arn, [LAKE_PREFIX]),
                            allow([s3a.GetBucketLocation], [lake_arn], sid="LocateTheLake"),
                            allow([kmsa.Decrypt], [key_arn_], sid="DecryptLakeObjects"),
                        ]
                    ),
                )
            ],
        )
    )
    cluster_id = naming.name("redshift", "iot")
    subnet_group = t.add_resource(
        ClusterSubnetGroup(
            "RedshiftSubnetGroup",
            Condition="DeployWarehouse",
            Description="Private subnets of the warehouse.",
            SubnetIds=Ref(subnets),
        )
    )
    parameter_group = t.add_resource(
        ClusterParameterGroup(
            "RedshiftParameterGroup",
            Condition="DeployWarehouse",
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
    cluster = t.add_resource(
        Cluster(
            "RedshiftCluster",
            Condition="DeployWarehouse",
            ClusterIdentifier=cluster_id,
            ClusterType=If("IsMultiNode", "multi-node", "single-node"),
            NodeType=Ref(node_type),
            NumberOfNodes=If("IsMultiNode", Ref(node_count), Ref("AWS::NoValue")),
            DBName=Ref(database_name),
            MasterUsername=Ref(admin_user),
            ManageMasterPassword=True,
            MasterPasswordSecretKmsKeyId=key_arn_,
            Encrypted=True,
            KmsKeyId=key_arn_,
            PubliclyAccessible=False,
            EnhancedVpcRouting=True,
            ClusterSubnetGroupName=Ref(subnet_group),
            ClusterParameterGroupName=Ref(parameter_group),
            VpcSecurityGroupIds=Ref(security_groups),
            IamRoles=[GetAtt(copy_role, "Arn")],
            AutomatedSnapshotRetentionPeriod=7,
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
    secret_arn = GetAtt(cluster, "MasterPasswordSecretArn")

    # --- Orchestrator -----------------------------------------------------
    # The pipeline's own records (lake state and locks, export summaries, change sets, COPY
    # manifests) sit beside the lake, outside what the crawler reads.
    lake_paths = [
        objects_under(lake, EXPORTS_PREFIX),
        objects_under(lake, LAKE_PREFIX),
        objects_under(lake, PIPELINE_PREFIX),
    ]
    quarantine_arn = global_arn("s3", f"${{{quarantine_bucket.title}}}")
    orchestrator_role = t.add_resource(
        iam.Role(
            "OrchestratorRole",
            RoleName=naming.name("role", "orchestrator"),
            Description="The role the batch pipeline (Dagster) runs as.",
            AssumeRolePolicyDocument=document(
                [
                    Statement(
                        Effect="Allow",
                        Action=[AssumeRole],
                        Principal=Principal(
                            "AWS",
                            If(
                                "HasOrchestratorPrincipal",
                                Ref(orchestrator_principal),
                                Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"),
                            ),
                        ),
                    )
                ]
            ),
            Policies=[
                iam.Policy(
                    PolicyName="batch-pipeline",
                    PolicyDocument=document(
                        [
                            allow(
                                [
                                    ddb.ExportTableToPointInTime,
                                    ddb.DescribeTable,
                                    # how far back exports reach (point-in-time recovery)
                                    ddb.DescribeContinuousBackups,
                                ],
                                [Ref(table_arn)],
                                sid="ExportTheTable",
                            ),
                            allow(
                                [ddb.DescribeExport],
                                [Join("", [Ref(table_arn), "/export/*"])],
                                sid="FollowExports",
                            ),
                            allow(
                                [
                                    s3a.GetObject,
                                    s3a.PutObject,
                                    s3a.PutObjectAcl,  # the export writes with an ACL header
                                    s3a.DeleteObject,
                                    s3a.AbortMultipartUpload,
                                ],
                                lake_paths,
                                sid="ReadAndWriteTheLake",
                            ),
                            _list_prefixes(
                                lake_arn, [EXPORTS_PREFIX, LAKE_PREFIX, PIPELINE_PREFIX]
                            ),
                            allow(USE_ACTIONS, [key_arn_], sid="UseTheLakeKey"),
                            # The function's quarantine and the topic rule's error records
                            # (messages it could not route): both are loaded as data.
                            allow(
                                [s3a.GetObject],
                                [
                                    objects_under(quarantine_arn, Ref(quarantine_prefix)),
                                    objects_under(quarantine_arn, RULE_ERRORS_PREFIX),
                                ],
                                sid="ReadQuarantinedRecords",
                            ),
                            _list_prefixes(
                                quarantine_arn,
                                [Ref(quarantine_prefix), RULE_ERRORS_PREFIX],
                                sid="ListQuarantinedRecords",
                            ),
                            # The table and the quarantine bucket are encrypted with it.
                            allow(
                                [kmsa.Decrypt, kmsa.DescribeKey],
                                [Ref(data_key_arn)],
                                sid="ReadTheStreamingData",
                            ),
                            # In `aws` the pipeline finds its resources in the stacks' outputs.
                            allow(
                                [cfna.DescribeStacks],
                                [
                                    arn("cloudformation", f"stack/{naming.stack(purpose)}/*")
                                    for purpose in ("streaming", "analytics")
                                ],
                                sid="ReadTheStackOutputs",
                            ),
                            # The table observation reads the stream processor's metrics.
                            # CloudWatch has no resource-level permissions for reading
                            # metrics: "*" is the only resource AWS accepts here.
                            allow(
                                [cwa.GetMetricStatistics],
                                [NO_RESOURCE_TYPE],
                                sid="ReadTheStreamMetrics",
                            ),
                            allow(
                                [gluea.StartCrawler, gluea.GetCrawler],
                                [arn("glue", f"crawler/{naming.crawler}")],
                                sid="RunTheCrawler",
                            ),
                            allow(
                                [
                                    gluea.GetDatabase,
                                    gluea.GetTable,
                                    gluea.GetTables,
                                    gluea.GetPartitions,
                                ],
                                catalog_resources,
                                sid="ReadTheCatalog",
                            ),
                        ]
                    ),
                )
            ],
        )
    )

    t.add_resource(
        iam.PolicyType(
            "OrchestratorWarehousePolicy",
            Condition="DeployWarehouse",
            PolicyName="warehouse",
            Roles=[Ref(orchestrator_role)],
            PolicyDocument=document(
                [
                    allow(
                        [redshift.DescribeClusters],
                        [arn("redshift", f"cluster:{cluster_id}")],
                        sid="FindTheWarehouse",
                    ),
                    allow(
                        [redshift.GetClusterCredentialsWithIAM],
                        [
                            Sub(
                                f"arn:${{AWS::Partition}}:redshift:${{AWS::Region}}:"
                                f"${{AWS::AccountId}}:dbname:{cluster_id}/${{{database_name.title}}}"
                            )
                        ],
                        sid="SignInToTheWarehouse",
                    ),
                    allow(
                        [sm.GetSecretValue, sm.DescribeSecret],
                        [secret_arn],
                        sid="ReadTheAdminSecret",
                    ),
                ]
            ),
        )
    )

    # --- Outputs ----------------------------------------------------------
    outputs = {
        AnalyticsOutput.LAKE_BUCKET_NAME: (
            Ref(lake),
            "Bucket of table exports and the Parquet lake.",
        ),
        AnalyticsOutput.EXPORTS_PREFIX: (EXPORTS_PREFIX, "Key prefix of DynamoDB exports."),
        AnalyticsOutput.LAKE_PREFIX: (LAKE_PREFIX, "Key prefix of the Parquet lake."),
        AnalyticsOutput.LAKE_KEY_ARN: (key_arn_, "KMS key encrypting the lake."),
        # Literal names: the same values as Ref, and they resolve where the emulator skips Glue.
        AnalyticsOutput.GLUE_DATABASE_NAME: (
            naming.glue_database,
            "Glue Data Catalog database of the lake.",
        ),
        AnalyticsOutput.CRAWLER_NAME: (naming.crawler, "Glue crawler over the lake."),
        AnalyticsOutput.REDSHIFT_DATABASE_NAME: (Ref(database_name), "Warehouse database."),
        AnalyticsOutput.REDSHIFT_COPY_ROLE_ARN: (
            GetAtt(copy_role, "Arn"),
            "IAM role COPY uses to read the lake.",
        ),
        AnalyticsOutput.ORCHESTRATOR_ROLE_ARN: (
            GetAtt(orchestrator_role, "Arn"),
            "Role the pipeline runs as.",
        ),
    }
    warehouse_outputs = {
        AnalyticsOutput.REDSHIFT_CLUSTER_IDENTIFIER: (Ref(cluster), "Redshift cluster."),
        AnalyticsOutput.REDSHIFT_ENDPOINT_ADDRESS: (
            GetAtt(cluster, "Endpoint.Address"),
            "Warehouse host name.",
        ),
        AnalyticsOutput.REDSHIFT_PORT: (GetAtt(cluster, "Endpoint.Port"), "Warehouse port."),
        AnalyticsOutput.REDSHIFT_SECRET_ARN: (
            secret_arn,
            "Secrets Manager secret with the admin credentials.",
        ),
    }
    for name, (value, description) in outputs.items():
        export_output(t, name, value, description)
    for name, (value, description) in warehouse_outputs.items():
        # If rather than an output Condition: the keys stay the same whether or not the
        # cluster exists (and the emulator mishandles conditional exports).
        export_output(t, name, If("DeployWarehouse", value, NO_WAREHOUSE), description)
    return t


def _list_prefixes(bucket_arn, prefixes: list, sid: str | None = None) -> Statement:
    """ListBucket limited to keys under `prefixes` (literals, or references to parameters)."""
    patterns = [
        p
        for prefix in prefixes
        for p in (prefix, f"{prefix}*" if isinstance(prefix, str) else Join("", [prefix, "*"]))
    ]
    return allow(
        [s3a.ListBucket],
        [bucket_arn],
        sid=sid or "List" + "And".join(p.strip("/").capitalize() for p in prefixes),
        condition=Condition(StringLike("s3:prefix", patterns)),
    )
