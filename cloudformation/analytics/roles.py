"""The roles: the one Redshift COPY reads the lake as, and the one the batch pipeline runs as."""

from __future__ import annotations

from awacs import cloudformation as cfna
from awacs import cloudwatch as cwa
from awacs import dynamodb as ddb
from awacs import glue as gluea
from awacs import kms as kmsa
from awacs import redshift
from awacs import s3 as s3a
from awacs import secretsmanager as sm
from awacs.aws import Allow, ArnLike, Condition, Principal, Statement, StringEquals
from awacs.sts import AssumeRole
from troposphere import AccountId, AWSHelperFn, GetAtt, If, Join, Ref, Template, iam
from troposphere.redshift import Cluster
from troposphere.s3 import Bucket

from cloudformation.analytics.catalog import catalog_arns
from cloudformation.analytics.lake import EXPORTS_PREFIX, LAKE_PREFIX, PIPELINE_PREFIX
from cloudformation.analytics.parameters import (
    DEPLOY_WAREHOUSE,
    HAS_ORCHESTRATOR_PRINCIPAL,
    AnalyticsParameters,
)
from cloudformation.analytics.warehouse import admin_secret_arn
from cloudformation.buckets import list_prefixes, objects_under
from cloudformation.iam import (
    NO_RESOURCE_TYPE,
    account_root,
    allow,
    arn,
    document,
    global_arn,
    role,
    service_role,
)
from cloudformation.kms import USE_ACTIONS
from cloudformation.layout import CHANGES_PREFIX, MANIFEST_PREFIX, RULE_ERRORS_PREFIX
from cloudformation.naming import ANALYTICS_STACK, STREAMING_STACK, Naming

#: The stacks whose outputs the pipeline reads in `aws` mode.
STACKS_THE_PIPELINE_READS = (STREAMING_STACK, ANALYTICS_STACK)


def add_copy_role(t: Template, naming: Naming, *, lake: Bucket, key_arn: AWSHelperFn) -> iam.Role:
    """Add the role Redshift assumes to COPY the lake's Parquet."""
    lake_arn = GetAtt(lake, "Arn")
    return t.add_resource(
        service_role(
            "RedshiftCopyRole",
            role_name=naming.name("role", "redshiftcopy"),
            service="redshift.amazonaws.com",
            policy_name="copy-from-lake",
            description="Lets Redshift COPY read the lake's Parquet.",
            statements=[
                allow([s3a.GetObject], [objects_under(lake, LAKE_PREFIX)], sid="ReadLakeParquet"),
                # Each load is one COPY from a manifest of the files it takes: the lake
                # versions' change sets, or whole lake days.
                allow(
                    [s3a.GetObject],
                    [objects_under(lake, CHANGES_PREFIX)],
                    sid="ReadChangeSets",
                ),
                allow(
                    [s3a.GetObject],
                    [objects_under(lake, MANIFEST_PREFIX)],
                    sid="ReadCopyManifests",
                ),
                list_prefixes(lake_arn, [LAKE_PREFIX]),
                allow([s3a.GetBucketLocation], [lake_arn], sid="LocateTheLake"),
                allow([kmsa.Decrypt], [key_arn], sid="DecryptLakeObjects"),
            ],
        )
    )


def add_orchestrator_role(
    t: Template,
    naming: Naming,
    params: AnalyticsParameters,
    *,
    lake: Bucket,
    key_arn: AWSHelperFn,
    cluster: Cluster,
) -> iam.Role:
    """Add the role the batch pipeline (Dagster) runs as, and its warehouse policy."""
    orchestrator = t.add_resource(
        role(
            "OrchestratorRole",
            role_name=naming.name("role", "orchestrator"),
            principal=Principal(
                "AWS",
                If(HAS_ORCHESTRATOR_PRINCIPAL, Ref(params.orchestrator_principal), account_root()),
            ),
            policy_name="batch-pipeline",
            description="The role the batch pipeline (Dagster) runs as.",
            statements=_batch_pipeline_statements(naming, params, lake=lake, key_arn=key_arn),
        )
    )
    # Dagster's run tasks (the orchestration stack) run as this role, with this policy as it is.
    orchestrator.AssumeRolePolicyDocument.Statement.append(
        Statement(
            Sid="DagsterRunTasks",
            Effect=Allow,
            Action=[AssumeRole],
            Principal=Principal("Service", "ecs-tasks.amazonaws.com"),
            Condition=Condition(
                [
                    StringEquals("aws:SourceAccount", AccountId),
                    ArnLike("aws:SourceArn", arn("ecs", "*")),
                ]
            ),
        )
    )
    # A policy of its own so it exists exactly when the cluster does.
    t.add_resource(
        iam.PolicyType(
            "OrchestratorWarehousePolicy",
            Condition=DEPLOY_WAREHOUSE,
            PolicyName="warehouse",
            Roles=[Ref(orchestrator)],
            PolicyDocument=document(
                [
                    allow(
                        [redshift.DescribeClusters],
                        [arn("redshift", f"cluster:{naming.redshift_cluster}")],
                        sid="FindTheWarehouse",
                    ),
                    allow(
                        [redshift.GetClusterCredentialsWithIAM],
                        [
                            arn(
                                "redshift",
                                f"dbname:{naming.redshift_cluster}/"
                                f"${{{params.warehouse.database_name.title}}}",
                            )
                        ],
                        sid="SignInToTheWarehouse",
                    ),
                    allow(
                        [sm.GetSecretValue, sm.DescribeSecret],
                        [admin_secret_arn(cluster)],
                        sid="ReadTheAdminSecret",
                    ),
                ]
            ),
        )
    )
    return orchestrator


def _batch_pipeline_statements(
    naming: Naming, params: AnalyticsParameters, *, lake: Bucket, key_arn: AWSHelperFn
) -> list[Statement]:
    """What the pipeline does outside the warehouse: export, transform, crawl, observe."""
    lake_arn = GetAtt(lake, "Arn")
    quarantine_arn = global_arn("s3", f"${{{params.streaming.quarantine_bucket.title}}}")
    table_arn = Ref(params.streaming.table_arn)
    return [
        allow(
            [
                ddb.ExportTableToPointInTime,
                ddb.DescribeTable,
                # how far back exports reach (point-in-time recovery)
                ddb.DescribeContinuousBackups,
            ],
            [table_arn],
            sid="ExportTheTable",
        ),
        allow([ddb.DescribeExport], [Join("", [table_arn, "/export/*"])], sid="FollowExports"),
        allow(
            [
                s3a.GetObject,
                s3a.PutObject,
                s3a.PutObjectAcl,  # the export writes with an ACL header
                s3a.DeleteObject,
                s3a.AbortMultipartUpload,
            ],
            # The pipeline's own records (lake state and locks, export summaries, change sets,
            # COPY manifests) sit beside the lake, outside what the crawler reads.
            [
                objects_under(lake, EXPORTS_PREFIX),
                objects_under(lake, LAKE_PREFIX),
                objects_under(lake, PIPELINE_PREFIX),
            ],
            sid="ReadAndWriteTheLake",
        ),
        list_prefixes(lake_arn, [EXPORTS_PREFIX, LAKE_PREFIX, PIPELINE_PREFIX]),
        allow(USE_ACTIONS, [key_arn], sid="UseTheLakeKey"),
        # The function's quarantine and the topic rule's error records (the messages it could
        # not route): both are loaded as data.
        allow(
            [s3a.GetObject],
            [
                objects_under(quarantine_arn, Ref(params.streaming.quarantine_prefix)),
                objects_under(quarantine_arn, RULE_ERRORS_PREFIX),
            ],
            sid="ReadQuarantinedRecords",
        ),
        list_prefixes(
            quarantine_arn,
            [Ref(params.streaming.quarantine_prefix), RULE_ERRORS_PREFIX],
            sid="ListQuarantinedRecords",
        ),
        # The table and the quarantine bucket are encrypted with it.
        allow(
            [kmsa.Decrypt, kmsa.DescribeKey],
            [Ref(params.streaming.data_key_arn)],
            sid="ReadTheStreamingData",
        ),
        # In `aws` the pipeline finds its resources in the stacks' outputs.
        allow(
            [cfna.DescribeStacks],
            [
                arn("cloudformation", f"stack/{naming.stack(purpose)}/*")
                for purpose in STACKS_THE_PIPELINE_READS
            ],
            sid="ReadTheStackOutputs",
        ),
        # The table observation reads the stream processor's metrics. CloudWatch has no
        # resource-level permissions for reading metrics: "*" is the only resource AWS
        # accepts here.
        allow([cwa.GetMetricStatistics], [NO_RESOURCE_TYPE], sid="ReadTheStreamMetrics"),
        allow(
            [gluea.StartCrawler, gluea.GetCrawler],
            [arn("glue", f"crawler/{naming.crawler}")],
            sid="RunTheCrawler",
        ),
        allow(
            [gluea.GetDatabase, gluea.GetTable, gluea.GetTables, gluea.GetPartitions],
            catalog_arns(naming),
            sid="ReadTheCatalog",
        ),
    ]
