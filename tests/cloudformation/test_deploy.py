"""Deploying the stacks into the AWS emulator (moto's CloudFormation over HTTP).

moto creates most resource types of the streaming stack; it skips the topic rule,
alarms and bucket policies and drops some properties (PITR, TTL, encryption),
which the local cloud fills in. These tests assert what the emulator does create.
Each test uses its own environment name so its stacks and buckets are its own.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import time
import warnings
from datetime import UTC, datetime

import boto3
import pytest

from cloudformation.deploy import DeployError, deploy, destroy
from cloudformation.naming import Naming
from local_cloud.cloud import LOCAL_STACKS
from stream_processor import contract

pytestmark = pytest.mark.integration

LOCAL_ANALYTICS = {
    "DeployWarehouse": "false",
    "SubnetIds": "subnet-00000000000000001,subnet-00000000000000002",
    "SecurityGroupIds": "sg-00000000000000001",
}


def _deploy(naming: Naming, log: list[str] | None = None, **kwargs) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns once per resource type it skips
        return deploy(
            naming,
            poll_seconds=0.05,
            log=(log.append if log is not None else lambda _: None),
            **kwargs,
        )


@pytest.fixture(scope="module")
def streaming_outputs(aws_endpoint) -> dict[str, str]:
    """The streaming stack of env `cfnstream`, deployed once for this module."""
    return _deploy(Naming("cfnstream"), stacks=("streaming",))["streaming"]


def test_streaming_stack_is_created_with_its_outputs(streaming_outputs):
    """GIVEN a fresh emulator WHEN the streaming stack deploys THEN CREATE_COMPLETE and
    every output holds the name the naming module gives."""
    naming = Naming("cfnstream")
    cfn = boto3.client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName=naming.stack("streaming"))["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    account = boto3.client("sts").get_caller_identity()["Account"]
    assert streaming_outputs["TableName"] == naming.table
    assert streaming_outputs["StreamName"] == naming.stream
    assert streaming_outputs["FunctionName"] == naming.function
    assert streaming_outputs["TopicRuleName"] == naming.topic_rule
    assert streaming_outputs["QuarantineBucketName"] == naming.quarantine_bucket(account)
    assert streaming_outputs["TableArn"].endswith(f":table/{naming.table}")


def test_table_exists_with_its_key_schema_and_alerts_index(streaming_outputs):
    """GIVEN the deployed stack THEN the table is keyed (device_id S, timestamp N) with the GSI."""
    table = boto3.client("dynamodb").describe_table(TableName=streaming_outputs["TableName"])
    table = table["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
        {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
    ]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [contract.ALERTS_INDEX]


def test_stream_bucket_and_queue_exist(streaming_outputs):
    """GIVEN the deployed stack THEN the stream is ACTIVE, the bucket and queue answer."""
    summary = boto3.client("kinesis").describe_stream_summary(
        StreamName=streaming_outputs["StreamName"]
    )["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["StreamARN"] == streaming_outputs["StreamArn"]
    boto3.client("s3").head_bucket(Bucket=streaming_outputs["QuarantineBucketName"])
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=streaming_outputs["OnFailureQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]
    assert attributes["QueueArn"] == streaming_outputs["OnFailureQueueArn"]


def test_function_runs_the_packaged_handler_with_the_stack_settings(streaming_outputs):
    """GIVEN the function THEN handler, runtime and environment point at this stack's resources,
    and its code is the content-addressed zip."""
    client = boto3.client("lambda")
    config = client.get_function_configuration(FunctionName=streaming_outputs["FunctionName"])
    assert config["Handler"] == "stream_processor.handler.handler"
    variables = config["Environment"]["Variables"]
    assert variables[contract.ENV_TABLE_NAME] == streaming_outputs["TableName"]
    assert variables[contract.ENV_QUARANTINE_BUCKET] == streaming_outputs["QuarantineBucketName"]
    mappings = client.list_event_source_mappings(FunctionName=streaming_outputs["FunctionName"])
    (mapping,) = mappings["EventSourceMappings"]
    assert mapping["EventSourceArn"] == streaming_outputs["StreamArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert (
        mapping["DestinationConfig"]["OnFailure"]["Destination"]
        == (streaming_outputs["OnFailureQueueArn"])
    )


def test_the_alert_notifier_reads_the_outbox_writes_of_the_alert_state_stream(streaming_outputs):
    """GIVEN the deployed stack THEN the alert state table streams new images, and the
    notifier's mapping reads that stream, filtered to outbox writes, with partial batch
    responses, bisection and its own on-failure queue."""
    naming = Naming("cfnstream")
    table = boto3.client("dynamodb").describe_table(
        TableName=streaming_outputs["AlertStateTableName"]
    )["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    (mapping,) = boto3.client("lambda").list_event_source_mappings(
        FunctionName=naming.alert_notifier_function
    )["EventSourceMappings"]
    assert mapping["EventSourceArn"] == table["LatestStreamArn"]
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    (only,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(only["Pattern"]) == contract.ALERT_OUTBOX_FILTER
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    queue = boto3.client("sqs").get_queue_attributes(
        QueueUrl=streaming_outputs["AlertNotifierFailureQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == queue


def test_redeploying_unchanged_templates_changes_nothing(streaming_outputs):
    """GIVEN a deployed stack WHEN deployed again unchanged THEN 'no changes', same outputs."""
    log: list[str] = []
    again = _deploy(Naming("cfnstream"), log, stacks=("streaming",))["streaming"]
    assert again == streaming_outputs
    assert any(line.endswith("no changes") for line in log)
    assert any("already uploaded" in line for line in log)


def test_analytics_deploys_without_a_warehouse_and_reads_streaming_outputs(aws_endpoint):
    """GIVEN both stacks, warehouse off (as locally) WHEN deployed THEN the orchestrator's
    outputs exist and the lake bucket follows the naming module."""
    naming = Naming("cfnboth")
    outputs = _deploy(naming, stacks=LOCAL_STACKS, parameters={"analytics": LOCAL_ANALYTICS})
    analytics = outputs["analytics"]
    account = boto3.client("sts").get_caller_identity()["Account"]
    assert analytics["LakeBucketName"] == naming.lake_bucket(account)
    assert analytics["GlueDatabaseName"] == naming.glue_database
    assert analytics["CrawlerName"] == naming.crawler
    assert analytics["RedshiftEndpointAddress"] == "not-deployed"
    role = analytics["OrchestratorRoleArn"].rsplit("/", 1)[-1]
    assert (
        boto3.client("iam").get_role(RoleName=role)["Role"]["Arn"]
        == (analytics["OrchestratorRoleArn"])
    )


def test_a_missing_required_parameter_fails_before_any_change(aws_endpoint):
    """GIVEN analytics without subnets WHEN deployed THEN a clear error and no stack."""
    naming = Naming("cfnmissing")
    _deploy(naming, stacks=("streaming",))
    with pytest.raises(DeployError, match=r"missing required.*SubnetIds.*SecurityGroupIds"):
        _deploy(naming, stacks=("analytics",))
    stacks = boto3.client("cloudformation").list_stacks()["StackSummaries"]
    assert naming.stack("analytics") not in {s["StackName"] for s in stacks}


def test_destroy_empties_the_buckets_and_deletes_the_stacks(aws_endpoint):
    """GIVEN a deployed stack with data in its bucket WHEN destroyed with empty_buckets THEN
    the stack, its buckets and the artifact bucket are gone."""
    naming = Naming("cfndestroy")
    outputs = _deploy(naming, stacks=("streaming",))["streaming"]
    s3 = boto3.client("s3")
    bucket = outputs["QuarantineBucketName"]
    s3.put_object(Bucket=bucket, Key="quarantine/a.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="quarantine/a.json", Body=b"{}")  # a second version

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto re-parses the template while deleting
        deleted = destroy(naming, empty_buckets=True, poll_seconds=0.05)

    assert deleted == [naming.stack("streaming")]
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert bucket not in names
    assert not any(name.startswith("s3-cfndestroy-") for name in names)
    live = boto3.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"]
    )["StackSummaries"]
    assert naming.stack("streaming") not in {s["StackName"] for s in live}


AWS_MODE = Naming("cfnaws")
CUSTOM_QUARANTINE_PREFIX = "rejected/"
DAY = "2023-11-16"


@pytest.fixture(scope="module")
def aws_mode(aws_endpoint):
    """Both stacks of env `cfnaws` (no warehouse, quarantine under `rejected/`), and the settings
    the pipeline loads from them in `aws` mode."""
    from pipeline_platform.env_override import overridden
    from pipeline_platform.environment import ENV_DEPLOYMENT, ENV_PLATFORM_ENV, load_settings

    outputs = _deploy(
        AWS_MODE,
        stacks=LOCAL_STACKS,
        parameters={
            "streaming": {"QuarantinePrefix": CUSTOM_QUARANTINE_PREFIX},
            "analytics": LOCAL_ANALYTICS,
        },
    )
    with overridden({ENV_PLATFORM_ENV: "aws", ENV_DEPLOYMENT: AWS_MODE.env}):
        settings = load_settings()
        yield outputs, settings


def test_pipeline_in_aws_mode_follows_the_deployed_stacks_and_their_quarantine_prefix(aws_mode):
    """GIVEN both stacks deployed (no warehouse) with a non-default QuarantinePrefix and a record
    quarantined under it WHEN the pipeline loads its settings in `aws` mode and shapes that day's
    quarantine THEN every name comes from the stack outputs, the record reaches the lake, and
    asking for the warehouse says the stack has none."""
    import dagster as dg

    from pipeline_platform.defs.keys import LAKE_QUARANTINE_PREFIX
    from pipeline_platform.defs.lake.assets import lake_quarantined_records
    from pipeline_platform.defs.partitions import hour_key
    from pipeline_platform.environment import Environment, SettingMissing
    from pipeline_platform.resources.by_environment import build_resources

    (streaming, analytics), settings = (
        (aws_mode[0][k] for k in ("streaming", "analytics")),
        aws_mode[1],
    )
    assert settings.environment is Environment.AWS
    assert (settings.table_name, settings.stream_name, settings.function_name) == (
        streaming["TableName"],
        streaming["StreamName"],
        streaming["FunctionName"],
    )
    assert settings.quarantine_bucket == streaming["QuarantineBucketName"]
    assert settings.quarantine_prefix == CUSTOM_QUARANTINE_PREFIX
    assert (settings.lake_bucket, settings.glue_database, settings.crawler_name) == (
        analytics["LakeBucketName"],
        analytics["GlueDatabaseName"],
        analytics["CrawlerName"],
    )
    assert settings.redshift is None
    resources = build_resources(Environment.AWS)  # loading asks AWS nothing
    with pytest.raises(SettingMissing, match="DeployWarehouse=false"):
        resources["warehouse"].cluster()

    s3 = boto3.client("s3")
    line = {"reason": contract.INVALID_JSON, "sequence_number": "1", "quarantined_at": 1700102001}
    s3.put_object(
        Bucket=settings.quarantine_bucket,
        Key=f"{CUSTOM_QUARANTINE_PREFIX}dt={DAY}/batch-1.jsonl",
        Body=json.dumps(line).encode() + b"\n",
    )
    time.sleep(1.2)  # a run takes objects written up to a second before it
    result = dg.materialize(
        [lake_quarantined_records],
        resources={"cloud": resources["cloud"]},
        partition_key=hour_key(datetime.now(UTC)),
    )
    (materialization,) = result.asset_materializations_for_node(lake_quarantined_records.op.name)
    assert materialization.metadata["dagster/row_count"].value == 1
    written = s3.list_objects_v2(
        Bucket=settings.lake_bucket, Prefix=f"{LAKE_QUARANTINE_PREFIX}dt={DAY}/"
    )
    assert written["KeyCount"] >= 1


def _allowed(statements: list[dict], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether Allow statements (no Deny, no NotAction in these policies) grant the request.

    Enough of IAM for the project's own policies: exact actions, `*` wildcards in
    resources, and StringLike conditions.
    """
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if statement["Effect"] != "Allow" or action not in actions:
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
            continue
        like = statement.get("Condition", {}).get("StringLike", {})
        if all(
            any(
                fnmatch.fnmatchcase(context.get(key, ""), p)
                for p in (v if isinstance(v, list) else [v])
            )
            for key, v in like.items()
        ):
            return True
    return False


def test_orchestrator_role_allows_every_call_the_pipeline_makes_in_aws(aws_mode):
    """GIVEN the deployed orchestrator role (the role the pipeline runs as) THEN its policy, as
    the emulator resolved it, allows each AWS call of the batch graph on the resources the
    pipeline's own settings and key layout name, including the non-default quarantine prefix."""
    from pipeline_platform.defs import keys
    from pipeline_platform.defs.lake.run_context import change_set_key

    outputs, settings = aws_mode
    streaming, analytics = outputs["streaming"], outputs["analytics"]
    role = analytics["OrchestratorRoleArn"].rsplit("/", 1)[-1]
    document = boto3.client("iam").get_role_policy(RoleName=role, PolicyName="batch-pipeline")[
        "PolicyDocument"
    ]
    if isinstance(document, str):  # the emulator returns the stored document as Python text
        document = ast.literal_eval(document)
    statements = document["Statement"]

    cfn = boto3.client("cloudformation")
    stack_ids = [
        cfn.describe_stacks(StackName=AWS_MODE.stack(p))["Stacks"][0]["StackId"]
        for p in ("streaming", "analytics")
    ]
    table = streaming["TableArn"]
    lake = f"arn:aws:s3:::{settings.lake_bucket}"
    quarantine = f"arn:aws:s3:::{settings.quarantine_bucket}"
    glue = f"arn:aws:glue:{settings.region}:{table.split(':')[4]}"
    day_prefix = f"dt={DAY}/"
    export = f"{keys.EXPORT_PREFIX}20261201T090000_20261201T100000/"
    # The pipeline's own records beside the lake: state and lock, export summary, change
    # set, COPY manifest.
    records = [
        f"{keys.STATE_PREFIX}sensor_readings.json",
        f"{keys.STATE_PREFIX}sensor_readings.lock",
        f"{keys.EXPORT_SUMMARY_PREFIX}2026-12-01-0900_2026-12-01-1000.json",
        change_set_key("sensor_readings", 7),
        f"{keys.MANIFEST_PREFIX}sensor_readings/v00000007.manifest",
    ]
    calls = [
        *(("cloudformation:DescribeStacks", stack_id, {}) for stack_id in stack_ids),
        ("dynamodb:DescribeTable", table, {}),
        ("dynamodb:DescribeContinuousBackups", table, {}),
        ("dynamodb:ExportTableToPointInTime", table, {}),
        ("dynamodb:DescribeExport", f"{table}/export/01700000000000-abcdef12", {}),
        ("kms:Decrypt", streaming["DataKeyArn"], {}),
        ("s3:ListBucket", lake, {"s3:prefix": export}),
        ("s3:PutObject", f"{lake}/{export}AWSDynamoDB/data/part.json.gz", {}),
        ("s3:GetObject", f"{lake}/{export}AWSDynamoDB/data/part.json.gz", {}),
        ("s3:DeleteObject", f"{lake}/{export}AWSDynamoDB/data/part.json.gz", {}),
        ("kms:GenerateDataKey", analytics["LakeKeyArn"], {}),
        ("kms:Decrypt", analytics["LakeKeyArn"], {}),
        ("s3:ListBucket", quarantine, {"s3:prefix": settings.quarantine_prefix}),
        ("s3:GetObject", f"{quarantine}/{settings.quarantine_prefix}{day_prefix}b.jsonl", {}),
        ("s3:ListBucket", quarantine, {"s3:prefix": settings.rule_errors_prefix}),
        ("s3:GetObject", f"{quarantine}/{settings.rule_errors_prefix}1700-abc.json", {}),
        *(
            (action, f"{lake}/{prefix}{day_prefix}part-0.parquet", {})
            for prefix in keys.LAKE_PREFIXES.values()
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
        ),
        *(
            ("s3:ListBucket", lake, {"s3:prefix": f"{prefix}{day_prefix}"})
            for prefix in keys.LAKE_PREFIXES.values()
        ),
        *(
            (action, f"{lake}/{key}", {})
            for key in records
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
        ),
        ("cloudwatch:GetMetricStatistics", "*", {}),
        ("glue:StartCrawler", f"{glue}:crawler/{settings.crawler_name}", {}),
        ("glue:GetCrawler", f"{glue}:crawler/{settings.crawler_name}", {}),
        *(
            (action, resource, {})
            for action in ("glue:GetTable", "glue:GetPartitions")
            # Glue checks the catalog, the database and the table.
            for resource in (
                f"{glue}:catalog",
                f"{glue}:database/{settings.glue_database}",
                *(f"{glue}:table/{settings.glue_database}/{t}" for t in keys.LAKE_PREFIXES),
            )
        ),
    ]
    denied = [(a, r, c) for a, r, c in calls if not _allowed(statements, a, r, c)]
    assert not denied, f"the orchestrator role does not allow: {denied}"
    # and it stays least-privilege: no reading the table item by item, nothing of the
    # quarantine bucket beyond its two prefixes, no writes there
    assert not _allowed(statements, "dynamodb:Scan", table, {})
    assert not _allowed(statements, "s3:GetObject", f"{quarantine}/other/x.json", {})
    assert not _allowed(statements, "s3:ListBucket", quarantine, {"s3:prefix": "other/"})
    for prefix in (settings.quarantine_prefix, settings.rule_errors_prefix):
        assert not _allowed(statements, "s3:PutObject", f"{quarantine}/{prefix}x", {})
