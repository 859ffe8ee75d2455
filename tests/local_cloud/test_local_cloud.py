"""The assembled local cloud: the streaming path from a device to DynamoDB, deployed from
the project's own templates, driven over MQTT (TCP) and the IoT Data API (HTTP)."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest

from local_cloud.cloud import LocalCloud
from local_cloud.ports import free_port
from platform_tools import device_simulator, realtime_queries
from platform_tools.cli import main as cli
from platform_tools.demo import SEED_PAYLOADS
from stream_processor import contract

pytestmark = pytest.mark.integration

# Its own deployment name, so the stacks never collide with other tests' resources
# in the emulator's process-wide state.
ENV = "lc"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, aws_endpoint):
    """A running local cloud on free ports for this module."""
    local = LocalCloud(
        state_dir=tmp_path_factory.mktemp("platform"),
        aws_port=free_port(),
        mqtt_port=free_port(),
        env=ENV,
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def aws(cloud):
    """boto3 clients bound to the local cloud's endpoint."""
    endpoints = cloud.endpoints
    return {
        name: boto3.client(name, endpoint_url=endpoints.aws, region_name=endpoints.region)
        for name in ("dynamodb", "s3", "iot", "glue", "lambda", "cloudwatch")
    }


@pytest.fixture(scope="module")
def seeded(cloud, aws):
    """The seed's eight payloads published by MQTT, as devices would, and drained."""
    endpoints = cloud.endpoints
    for _, payload in SEED_PAYLOADS:
        device_simulator.publish(
            "iot/sensors", payload, host=endpoints.mqtt_host, port=endpoints.mqtt_port
        )
    cloud.wait_until_drained(timeout=60)
    return endpoints


def _item(aws, endpoints, device_id: str, timestamp: int) -> dict:
    found = aws["dynamodb"].get_item(
        TableName=endpoints.output("streaming", "TableName"),
        Key={contract.DEVICE_ID: {"S": device_id}, contract.TIMESTAMP: {"N": str(timestamp)}},
    )
    assert "Item" in found, f"{device_id}@{timestamp} was not stored"
    return realtime_queries._plain(found["Item"])


def _json_lines(aws, bucket: str, prefix: str) -> list[dict]:
    lines: list[dict] = []
    for obj in aws["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = aws["s3"].get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        lines.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return lines


def test_stacks_are_deployed_from_the_templates_including_what_the_emulator_skips(cloud, aws):
    """GIVEN the local cloud is up
    WHEN we look at the emulator
    THEN the topic rule, the Glue crawler and PITR exist as the templates describe them."""
    endpoints = cloud.endpoints
    rule = aws["iot"].get_topic_rule(ruleName=endpoints.output("streaming", "TopicRuleName"))
    assert rule["rule"]["sql"] == "SELECT * FROM 'iot/sensors'"
    kinesis = rule["rule"]["actions"][0]["kinesis"]
    assert kinesis["partitionKey"] == "${device_id}"
    assert kinesis["streamName"] == endpoints.output("streaming", "StreamName")
    assert rule["rule"]["errorAction"]["s3"]["bucketName"] == endpoints.output(
        "streaming", "QuarantineBucketName"
    )
    crawler = aws["glue"].get_crawler(Name=endpoints.output("analytics", "CrawlerName"))["Crawler"]
    lake = endpoints.output("analytics", "LakeBucketName")
    assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{lake}/lake/"
    assert "**/manifest-*.json" in crawler["Targets"]["S3Targets"][0]["Exclusions"]
    backups = aws["dynamodb"].describe_continuous_backups(
        TableName=endpoints.output("streaming", "TableName")
    )["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    mapping = aws["lambda"].list_event_source_mappings(
        FunctionName=endpoints.output("streaming", "FunctionName")
    )["EventSourceMappings"][0]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    alarm_topic = endpoints.output("streaming", "AlarmTopicArn")
    alarms = {
        a["MetricName"]: a
        for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]
        if alarm_topic in a["AlarmActions"]
    }
    assert set(alarms) == {
        "IteratorAge",
        "Errors",
        "Throttles",
        "ApproximateNumberOfMessagesVisible",
    }
    assert alarms["IteratorAge"]["Threshold"] == 60000  # the stack parameter's default
    assert alarms["IteratorAge"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": endpoints.output("streaming", "FunctionName")}
    ]
    queue_url = endpoints.output("streaming", "OnFailureQueueUrl")
    assert alarms["ApproximateNumberOfMessagesVisible"]["Dimensions"] == [
        {"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[-1]}
    ]


def test_seed_readings_published_by_mqtt_are_stored_and_classified(seeded, aws):
    """GIVEN the seed's payloads published over MQTT to iot/sensors
    WHEN the stream is drained
    THEN each valid reading is in DynamoDB with the contract's alerts and flags."""
    normal = _item(aws, seeded, "sensor-101", 1700100000)
    assert (normal["temperature"], normal["humidity"]) == (22, 55)
    assert normal["alerts"] == [] and normal["quality_flags"] == []
    assert _item(aws, seeded, "sensor-102", 1700100500)["alerts"] == ["HIGH_TEMPERATURE"]
    assert _item(aws, seeded, "sensor-103", 1700101000)["alerts"] == ["LOW_HUMIDITY"]
    assert _item(aws, seeded, "sensor-104", 1700101500)["quality_flags"] == ["MISSING_HUMIDITY"]
    hot = _item(aws, seeded, "sensor-105", 1700103000)
    assert hot["alerts"] == [] and hot["quality_flags"] == ["TEMPERATURE_OUT_OF_RANGE"]
    cold = _item(aws, seeded, "sensor-106", 1700103500)
    assert cold["alerts"] == [] and cold["quality_flags"] == ["HUMIDITY_OUT_OF_RANGE"]
    assert _item(aws, seeded, "sensor-107", 1700104000)["pressure"] == 1012


def test_invalid_json_lands_in_the_rule_error_action_with_its_bytes(seeded, aws):
    """GIVEN 'Invalid JSON Data' published to iot/sensors
    WHEN the rule cannot derive a partition key from it
    THEN the error action keeps it in S3 under errors/, byte for byte."""
    errors = _json_lines(aws, seeded.output("streaming", "QuarantineBucketName"), "errors/")
    payloads = [base64.b64decode(e["base64OriginalPayload"]) for e in errors]
    assert b"Invalid JSON Data" in payloads
    failure = errors[payloads.index(b"Invalid JSON Data")]["failures"][0]
    assert failure["failedAction"] == "KinesisAction"


def test_iot_data_api_publish_routes_through_the_rules_and_quarantines_bad_readings(
    cloud, seeded, aws
):
    """GIVEN a good and a bad reading published through the IoT Data API (like the CLI)
    WHEN the stream is drained
    THEN the good one is stored and the bad one quarantined with its raw bytes."""
    good = b'{"device_id": "api-1", "timestamp": 1700200000, "temperature": 20, "humidity": 50}'
    bad = b'{"device_id": "api-2", "timestamp": "not a time", "temperature": 20}'
    for payload in (good, bad):
        assert (
            cli(
                [
                    "publish",
                    "--via-iot-data",
                    "--payload",
                    payload.decode(),
                    "--endpoint-url",
                    seeded.aws,
                ]
            )
            == 0
        )
    cloud.wait_until_drained(timeout=60)
    assert _item(aws, seeded, "api-1", 1700200000)["temperature"] == 20
    quarantined = _json_lines(
        aws,
        seeded.output("streaming", "QuarantineBucketName"),
        seeded.output("streaming", "QuarantinePrefix"),
    )
    mine = [q for q in quarantined if base64.b64decode(q["data"]) == bad]
    assert len(mine) == 1
    assert mine[0]["reason"] == contract.INVALID_TIMESTAMP
    assert mine[0]["device_id"] == "api-2"


def test_real_time_queries_answer_from_the_table_and_the_alerts_index(seeded, aws):
    """GIVEN the seed readings stored
    WHEN the real-time queries run
    THEN latest, device history and recent alerts return what was stored."""
    table = seeded.output("streaming", "TableName")
    latest = {r["device_id"]: r for r in realtime_queries.latest(aws["dynamodb"], table)}
    assert latest["sensor-101"]["timestamp"] == 1700100000
    history = realtime_queries.device_history(aws["dynamodb"], table, "sensor-107")
    assert [r["timestamp"] for r in history] == [1700104000]
    alerts = realtime_queries.recent_alerts(
        aws["dynamodb"], table, since=1700000000, until=1700200000
    )
    assert {(r["device_id"], tuple(r["alerts"])) for r in alerts} == {
        ("sensor-102", ("HIGH_TEMPERATURE",)),
        ("sensor-103", ("LOW_HUMIDITY",)),
    }


def test_a_mapping_that_falls_behind_shows_in_lambdas_iterator_age(cloud, seeded, aws):
    """GIVEN the deployed mapping switched off while a device publishes, for three seconds
    WHEN it is switched on again and catches up
    THEN Lambda's IteratorAge metric (AWS/Lambda, by function) has a maximum of at least
    those three seconds, the age of the oldest record the first batch carried."""
    function = seeded.output("streaming", "FunctionName")
    (mapping,) = aws["lambda"].list_event_source_mappings(FunctionName=function)[
        "EventSourceMappings"
    ]
    aws["lambda"].update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    time.sleep(1.5)  # the runner sees mapping changes within a second
    payload = json.dumps(
        {"device_id": "sensor-lag", "timestamp": int(time.time()), "temperature": 20}
    ).encode()
    try:
        device_simulator.publish(
            "iot/sensors", payload, host=seeded.mqtt_host, port=seeded.mqtt_port
        )
        time.sleep(3)
    finally:
        aws["lambda"].update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    time.sleep(1.5)
    cloud.wait_until_drained(timeout=60)

    def oldest_ms() -> float:
        points = aws["cloudwatch"].get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="IteratorAge",
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=time.time() - 300,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        return max((p["Maximum"] for p in points), default=0.0)

    deadline = time.monotonic() + 10  # the runner puts the metric once a second
    while oldest_ms() < 3000 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert oldest_ms() >= 3000


def test_table_observation_reports_what_the_function_stored_from_its_metrics(cloud, seeded, aws):
    """GIVEN the seed processed by the deployed function
    WHEN the batch side's table observation runs
    THEN it reports the table's item count and, from the function's EMF `stored` metric
    (extracted from its log as CloudWatch does), at least the seed's seven readings; the
    function's batch lines are in its log file."""
    import dagster as dg

    from pipeline_platform.definitions import build_definitions
    from pipeline_platform.defs import keys
    from pipeline_platform.defs.jobs import OBSERVE_JOB
    from pipeline_platform.env_override import overridden
    from pipeline_platform.environment import ENV_DEPLOYMENT, ENV_ENDPOINT_URL

    # Every invocation so far finished, its metrics put (earlier tests publish too); and a
    # second passes, since statistics cover whole seconds before their end time.
    cloud.wait_until_drained(timeout=60)
    time.sleep(1.1)
    # The deployment's names resolve when the run starts, so the environment says where.
    with overridden({ENV_DEPLOYMENT: ENV, ENV_ENDPOINT_URL: seeded.aws}):
        job = build_definitions().resolve_job_def(OBSERVE_JOB)
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    (observation,) = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.asset_key == keys.DYNAMODB_TABLE
    metadata = {k: v.value for k, v in observation.metadata.items()}
    table = aws["dynamodb"].describe_table(TableName=seeded.output("streaming", "TableName"))
    assert metadata["item_count"] == table["Table"]["ItemCount"] >= 7
    assert metadata["stored_last_24h"] >= 7
    assert "latest_write_period" in metadata
    function = seeded.output("streaming", "FunctionName")
    batch_lines = (seeded.function_logs / f"{function}.log").read_text().splitlines()
    assert sum(json.loads(line)["stored"] for line in batch_lines) == metadata["stored_last_24h"]
