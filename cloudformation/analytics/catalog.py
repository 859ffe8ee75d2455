"""The catalog: the Glue database of the lake, and the crawler (with its role and
security configuration) that keeps the database's tables and partitions current.
"""

from __future__ import annotations

import json

from awacs import glue as gluea
from awacs import logs as logsa
from awacs import s3 as s3a
from troposphere import AccountId, AWSHelperFn, GetAtt, Ref, Sub, Template, iam
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
from troposphere.s3 import Bucket

from cloudformation.analytics.lake import LAKE_PREFIX
from cloudformation.buckets import list_prefixes, objects_under
from cloudformation.iam import allow, arn, service_role
from cloudformation.kms import USE_ACTIONS
from cloudformation.naming import Naming

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


def catalog_arns(naming: Naming) -> list[AWSHelperFn]:
    """The catalog, the lake's database and its tables: what reading the catalog touches."""
    return [
        arn("glue", "catalog"),
        arn("glue", f"database/{naming.glue_database}"),
        arn("glue", f"table/{naming.glue_database}/*"),
    ]


def add_catalog(t: Template, naming: Naming, *, lake: Bucket, key_arn: AWSHelperFn) -> Crawler:
    """Add the Glue database and the crawler over the lake's `lake/` prefix; return the crawler."""
    database = t.add_resource(
        Database(
            "GlueDatabase",
            CatalogId=AccountId,
            DatabaseInput=DatabaseInput(
                Name=naming.glue_database,
                Description="Sensor readings and quarantined records in the Parquet lake.",
            ),
        )
    )
    security_configuration_name = naming.name("gluesecurity", "lake")
    security_configuration = t.add_resource(
        SecurityConfiguration(
            "GlueSecurityConfiguration",
            Name=security_configuration_name,
            EncryptionConfiguration=EncryptionConfiguration(
                S3Encryptions=[S3Encryption(S3EncryptionMode="SSE-KMS", KmsKeyArn=key_arn)],
                CloudWatchEncryption=CloudWatchEncryption(
                    CloudWatchEncryptionMode="SSE-KMS", KmsKeyArn=key_arn
                ),
                JobBookmarksEncryption=JobBookmarksEncryption(
                    JobBookmarksEncryptionMode="CSE-KMS", KmsKeyArn=key_arn
                ),
            ),
        )
    )
    crawler_role = t.add_resource(_crawler_role(naming, lake, key_arn))
    return t.add_resource(
        Crawler(
            "LakeCrawler",
            DependsOn=[security_configuration],
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


def _crawler_role(naming: Naming, lake: Bucket, key_arn: AWSHelperFn) -> iam.Role:
    """The crawler's role: read the lake, maintain the catalog tables, write its own logs."""
    return service_role(
        "CrawlerRole",
        role_name=naming.name("role", "crawler"),
        service="glue.amazonaws.com",
        policy_name="lake-crawler",
        description="Lets the crawler read the lake and keep its catalog tables current.",
        statements=[
            allow([s3a.GetObject], [objects_under(lake, LAKE_PREFIX)], sid="ReadTheLake"),
            list_prefixes(GetAtt(lake, "Arn"), [LAKE_PREFIX]),
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
                catalog_arns(naming),
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
            allow(USE_ACTIONS, [key_arn], sid="UseTheLakeKey"),
        ],
    )
