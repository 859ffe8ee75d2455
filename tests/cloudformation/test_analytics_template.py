"""Targeted checks of the analytics stack: lake, crawler, warehouse and orchestrator."""

from __future__ import annotations

import json

from cloudformation.analytics import CRAWLER_EXCLUSIONS
from cloudformation.outputs import AnalyticsOutput
from tests.cloudformation.conftest import one

# Every output key the pipeline and operators may ask for.
REQUIRED_OUTPUTS = set(AnalyticsOutput)


def _grants(role: dict) -> dict[str, tuple[list[str], list]]:
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    return {s["Sid"]: (sorted(s["Action"]), s["Resource"]) for s in statements}


def test_crawler_reads_only_the_parquet_prefix_and_skips_export_markers(analytics, naming):
    """GIVEN the crawler THEN target s3://lake/lake/, exclusions, update-in-db, log deletes."""
    crawler = one(analytics, "AWS::Glue::Crawler")["Properties"]
    assert crawler["Name"] == naming.crawler
    (target,) = crawler["Targets"]["S3Targets"]
    assert target["Path"] == {"Fn::Sub": "s3://${LakeBucket}/lake/"}
    for pattern in ("**/manifest-*.json", "**/_started", "**/*.md5", "**/_SUCCESS"):
        assert pattern in target["Exclusions"]
    assert target["Exclusions"] == list(CRAWLER_EXCLUSIONS)
    assert crawler["SchemaChangePolicy"] == {
        "DeleteBehavior": "LOG",
        "UpdateBehavior": "UPDATE_IN_DATABASE",
    }
    configuration = json.loads(crawler["Configuration"])
    # Tables at lake/<table>/ so dt= folders stay partition columns of one table.
    assert configuration["Grouping"]["TableLevelConfiguration"] == 3
    assert configuration["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == (
        "InheritFromTable"
    )
    database = one(analytics, "AWS::Glue::Database")["Properties"]
    assert database["DatabaseInput"]["Name"] == naming.glue_database
    assert (
        crawler["CrawlerSecurityConfiguration"]
        == (one(analytics, "AWS::Glue::SecurityConfiguration")["Properties"]["Name"])
    )


def test_warehouse_is_encrypted_private_and_has_a_managed_password(analytics):
    """GIVEN the cluster THEN encrypted, not public, in the given subnets, secret-managed."""
    cluster = one(analytics, "AWS::Redshift::Cluster")
    props = cluster["Properties"]
    assert cluster["Condition"] == "DeployWarehouse"
    assert props["Encrypted"] is True
    assert props["PubliclyAccessible"] is False
    assert props["ManageMasterPassword"] is True
    assert "MasterUserPassword" not in props
    assert props["IamRoles"] == [{"Fn::GetAtt": ["RedshiftCopyRole", "Arn"]}]
    subnets = one(analytics, "AWS::Redshift::ClusterSubnetGroup")["Properties"]
    assert subnets["SubnetIds"] == {"Ref": "SubnetIds"}
    assert analytics["Parameters"]["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    parameters = one(analytics, "AWS::Redshift::ClusterParameterGroup")["Properties"]
    assert {"ParameterName": "require_ssl", "ParameterValue": "true"} in parameters["Parameters"]


def test_copy_role_reads_only_the_lake_its_change_sets_and_manifests(analytics):
    """GIVEN the COPY role THEN Redshift assumes it and it reads lake/, the lake's change sets
    and the COPY manifests only."""
    role = analytics["Resources"]["RedshiftCopyRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "redshift.amazonaws.com"
    }
    grants = _grants(role)
    assert grants["ReadLakeParquet"] == (
        ["s3:GetObject"],
        [{"Fn::Join": ["", [{"Fn::GetAtt": ["LakeBucket", "Arn"]}, "/", "lake/", "*"]]}],
    )
    assert grants["ReadChangeSets"] == (
        ["s3:GetObject"],
        [
            {
                "Fn::Join": [
                    "",
                    [{"Fn::GetAtt": ["LakeBucket", "Arn"]}, "/", "pipeline/changes/", "*"],
                ]
            }
        ],
    )
    assert grants["ReadCopyManifests"] == (
        ["s3:GetObject"],
        [
            {
                "Fn::Join": [
                    "",
                    [{"Fn::GetAtt": ["LakeBucket", "Arn"]}, "/", "pipeline/manifests/", "*"],
                ]
            }
        ],
    )
    actions = {action for granted, _ in grants.values() for action in granted}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "kms:Decrypt"}


def test_orchestrator_can_export_the_table_run_the_crawler_and_reach_the_warehouse(analytics):
    """GIVEN the orchestrator role THEN export, lake read/write, crawler, catalog, warehouse."""
    grants = _grants(analytics["Resources"]["OrchestratorRole"]["Properties"])
    assert grants["ExportTheTable"] == (
        [
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTable",
            "dynamodb:ExportTableToPointInTime",
        ],
        [{"Ref": "TableArn"}],
    )
    assert grants["FollowExports"][0] == ["dynamodb:DescribeExport"]
    assert grants["RunTheCrawler"][0] == ["glue:GetCrawler", "glue:StartCrawler"]
    assert "s3:PutObject" in grants["ReadAndWriteTheLake"][0]
    warehouse = analytics["Resources"]["OrchestratorWarehousePolicy"]
    assert warehouse["Properties"]["Roles"] == [{"Ref": "OrchestratorRole"}]
    warehouse_grants = {s["Sid"]: s for s in warehouse["Properties"]["PolicyDocument"]["Statement"]}
    assert warehouse_grants["ReadTheAdminSecret"]["Resource"] == [
        {"Fn::GetAtt": ["RedshiftCluster", "MasterPasswordSecretArn"]}
    ]
    assert warehouse_grants["SignInToTheWarehouse"]["Action"] == [
        "redshift:GetClusterCredentialsWithIAM"
    ]


def test_outputs_the_orchestrator_reads_exist_whether_or_not_the_warehouse_is_deployed(
    analytics,
):
    """GIVEN the outputs THEN every key is present and none depends on a condition."""
    outputs = analytics["Outputs"]
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert all("Condition" not in o for o in outputs.values())
    assert outputs["RedshiftEndpointAddress"]["Value"]["Fn::If"][0] == "DeployWarehouse"


def test_lake_bucket_name_matches_the_naming_module(analytics, naming):
    """GIVEN the lake bucket's name template THEN, for an account, it is `lake_bucket()`."""
    name = analytics["Resources"]["LakeBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert name.replace("${AWS::AccountId}", "123456789012") == naming.lake_bucket("123456789012")
