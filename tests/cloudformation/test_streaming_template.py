"""Targeted checks of the streaming stack: the properties the pipeline relies on."""

from __future__ import annotations

from cloudformation.naming import Naming
from cloudformation.outputs import StreamingOutput
from stream_processor import contract
from tests.cloudformation.conftest import one

# Every output key the pipeline, the deployer and the local cloud may ask for.
REQUIRED_OUTPUTS = set(StreamingOutput)


def test_table_is_keyed_by_device_and_time_with_pitr_ttl_and_encryption(streaming, naming):
    """GIVEN the readings table THEN natural key, PITR (exports need it), TTL and a CMK."""
    table = streaming["Resources"]["ReadingsTable"]["Properties"]
    assert table["TableName"] == naming.table
    assert table["KeySchema"] == [
        {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
        {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {contract.DEVICE_ID: "S", contract.TIMESTAMP: "N", contract.ALERT_DATE: "S"}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": contract.EXPIRES_AT,
        "Enabled": True,
    }
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    # On-demand unless the parameter asks for provisioned capacity.
    assert streaming["Parameters"]["TableBillingMode"]["Default"] == "PAY_PER_REQUEST"


def test_alerts_index_is_sparse_on_alert_date_and_projects_measurements(streaming):
    """GIVEN the table THEN the alerts index is keyed (alert_date, timestamp) with readings."""
    table = streaming["Resources"]["ReadingsTable"]["Properties"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == contract.ALERTS_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": contract.ALERT_DATE, "KeyType": "HASH"},
        {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
    ]
    projection = index["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    assert {*contract.MEASUREMENTS, contract.ALERTS} <= set(projection["NonKeyAttributes"])


def test_event_source_mapping_reports_item_failures_bisects_and_bounds_retries(streaming):
    """GIVEN the mapping THEN partial batch responses, bisect, bounded retries, SQS on failure."""
    esm = streaming["Resources"]["ProcessorEventSourceMapping"]["Properties"]
    params = streaming["Parameters"]
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"}
    assert params["MaximumRetryAttempts"]["MinValue"] == 0  # -1 (forever) is not allowed
    assert esm["MaximumRecordAgeInSeconds"] == {"Ref": "MaximumRecordAgeSeconds"}
    assert params["MaximumRecordAgeSeconds"]["MinValue"] >= 60
    assert esm["BatchSize"] == {"Ref": "BatchSize"}
    assert (params["BatchSize"]["MinValue"], params["BatchSize"]["MaxValue"]) == (1, 10000)
    assert esm["MaximumBatchingWindowInSeconds"] == {"Ref": "BatchingWindowSeconds"}
    assert params["BatchingWindowSeconds"]["MaxValue"] == 300
    assert esm["ParallelizationFactor"] == {"Ref": "ParallelizationFactor"}
    assert params["ParallelizationFactor"]["MaxValue"] == 10
    assert esm["StartingPosition"] == {"Ref": "StartingPosition"}
    assert set(params["StartingPosition"]["AllowedValues"]) == {"LATEST", "TRIM_HORIZON"}
    assert esm["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}}
    }
    assert "KmsMasterKeyId" in streaming["Resources"]["OnFailureQueue"]["Properties"]


def test_function_names_the_handler_and_gets_its_settings_from_the_contract(streaming, naming):
    """GIVEN the function THEN the handler string, a 3.12+ runtime and every contract setting."""
    fn = streaming["Resources"]["ProcessorFunction"]["Properties"]
    assert fn["FunctionName"] == naming.function
    assert fn["Handler"] == "stream_processor.handler.handler"
    assert fn["Runtime"] in ("python3.12", "python3.13")
    assert fn["Code"] == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    variables = fn["Environment"]["Variables"]
    expected = {
        contract.ENV_TABLE_NAME,
        contract.ENV_QUARANTINE_BUCKET,
        contract.ENV_QUARANTINE_PREFIX,
        contract.ENV_HIGH_TEMPERATURE_C,
        contract.ENV_LOW_HUMIDITY_PCT,
        contract.ENV_TEMPERATURE_MIN_C,
        contract.ENV_TEMPERATURE_MAX_C,
        contract.ENV_HUMIDITY_MIN_PCT,
        contract.ENV_HUMIDITY_MAX_PCT,
        contract.ENV_TTL_DAYS,
        contract.ENV_WRITE_CONCURRENCY,
        contract.ENV_EARLIEST_TIMESTAMP,
        contract.ENV_MAX_CLOCK_SKEW_SECONDS,
        contract.ENV_ALERT_STATE_TABLE,
        contract.ENV_ALERT_BUS_NAME,
        contract.ENV_SILENCE_WINDOW_SECONDS,
        contract.ENV_HIGH_TEMPERATURE_CLEAR_MARGIN_C,
        contract.ENV_LOW_HUMIDITY_CLEAR_MARGIN_PCT,
        contract.ENV_ALERT_REMINDER_SECONDS,
        contract.ENV_ALERT_STATE_TTL_DAYS,
    }
    assert set(variables) == expected
    assert variables[contract.ENV_TABLE_NAME] == {"Ref": "ReadingsTable"}
    assert variables[contract.ENV_QUARANTINE_BUCKET] == {"Ref": "QuarantineBucket"}
    log_group = streaming["Resources"]["ProcessorLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/lambda/{naming.function}"
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_stream_is_kms_encrypted_and_capacity_mode_is_a_parameter(streaming, naming):
    """GIVEN the stream THEN a CMK encrypts it and on-demand or shards is chosen by parameter."""
    stream = one(streaming, "AWS::Kinesis::Stream")["Properties"]
    assert stream["Name"] == naming.stream
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert stream["StreamModeDetails"]["StreamMode"]["Fn::If"][0] == "StreamIsOnDemand"
    assert stream["ShardCount"]["Fn::If"] == [
        "StreamIsOnDemand",
        {"Ref": "AWS::NoValue"},
        {"Ref": "ShardCount"},
    ]
    key = one(streaming, "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True


def test_topic_rule_routes_the_topic_to_kinesis_keyed_by_device_with_s3_error_action(
    streaming, naming
):
    """GIVEN the rule THEN SELECT * from the topic, ${device_id} keys, errors kept in S3."""
    rule = one(streaming, "AWS::IoT::TopicRule")["Properties"]
    assert rule["RuleName"] == naming.topic_rule
    payload = rule["TopicRulePayload"]
    assert payload["Sql"] == {"Fn::Sub": "SELECT * FROM '${SensorTopic}'"}
    assert streaming["Parameters"]["SensorTopic"]["Default"] == "iot/sensors"
    assert payload["AwsIotSqlVersion"] == "2016-03-23"
    (action,) = payload["Actions"]
    assert action["Kinesis"]["PartitionKey"] == "${device_id}"
    assert action["Kinesis"]["StreamName"] == {"Ref": "SensorStream"}
    error = payload["ErrorAction"]["S3"]
    assert error["BucketName"] == {"Ref": "QuarantineBucket"}
    assert error["Key"].startswith("errors/")


def test_rule_role_may_only_put_to_the_stream_and_the_errors_prefix(streaming):
    """GIVEN the rule's role THEN PutRecord on the stream, PutObject on errors/, KMS encrypt."""
    role = streaming["Resources"]["TopicRuleRole"]["Properties"]
    (policy,) = role["Policies"]
    grants = {tuple(s["Action"]): s["Resource"] for s in policy["PolicyDocument"]["Statement"]}
    assert grants[("kinesis:PutRecord",)] == [{"Fn::GetAtt": ["SensorStream", "Arn"]}]
    assert grants[("s3:PutObject",)] == [
        {"Fn::Join": ["", [{"Fn::GetAtt": ["QuarantineBucket", "Arn"]}, "/", "errors/", "*"]]}
    ]
    assert grants[("kms:GenerateDataKey",)] == [{"Fn::GetAtt": ["DataKey", "Arn"]}]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "iot.amazonaws.com"}


def test_processor_role_grants_exactly_what_the_function_and_mapping_need(streaming):
    """GIVEN the function's role THEN each grant is the listed actions on this stack's ARNs."""
    (policy,) = streaming["Resources"]["ProcessorRole"]["Properties"]["Policies"]
    grants = {
        s["Sid"]: (sorted(s["Action"]), s["Resource"])
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert grants["ReadTheStream"] == (
        sorted(
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
            ]
        ),
        [{"Fn::GetAtt": ["SensorStream", "Arn"]}],
    )
    assert grants["WriteReadings"] == (
        ["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
        [{"Fn::GetAtt": ["ReadingsTable", "Arn"]}],
    )
    assert grants["QuarantineRecords"][0] == ["s3:PutObject"]
    assert grants["ReportFailedBatches"] == (
        ["sqs:SendMessage"],
        [{"Fn::GetAtt": ["OnFailureQueue", "Arn"]}],
    )
    assert grants["UseTheDataKey"][0] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grants["WriteOwnLogs"] == (
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [{"Fn::GetAtt": ["ProcessorLogGroup", "Arn"]}],
    )


def test_device_policy_connects_as_own_thing_and_publishes_only_to_the_topic(streaming):
    """GIVEN the device IoT policy THEN connect as the thing name, publish to the topic only."""
    document = one(streaming, "AWS::IoT::Policy")["Properties"]["PolicyDocument"]
    by_action = {tuple(s["Action"]): s for s in document["Statement"]}
    connect = by_action[("iot:Connect",)]
    assert connect["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"
            "client/${!iot:Connection.Thing.ThingName}"
        }
    ]
    publish = by_action[("iot:Publish",)]
    assert publish["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"
            "topic/${SensorTopic}"
        }
    ]
    assert set(by_action) == {("iot:Connect",), ("iot:Publish",)}


def test_alarms_cover_iterator_age_errors_throttles_and_failures_to_an_encrypted_topic(streaming):
    """GIVEN the alarms THEN the four signals notify the KMS-encrypted alarm topic."""
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in streaming["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) == {
        "IteratorAge",
        "Errors",
        "Throttles",
        "ApproximateNumberOfMessagesVisible",
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert "KmsMasterKeyId" in streaming["Resources"]["AlarmTopic"]["Properties"]


def test_outputs_the_orchestrator_reads_are_exported_under_the_stack_name(streaming):
    """GIVEN the outputs THEN every key the orchestrator reads exists and is exported."""
    outputs = streaming["Outputs"]
    assert set(outputs) >= REQUIRED_OUTPUTS
    for key in REQUIRED_OUTPUTS:
        assert outputs[key]["Export"] == {"Name": {"Fn::Sub": f"${{AWS::StackName}}-{key}"}}
    assert outputs["TopicRuleName"]["Value"] == Naming().topic_rule


def test_quarantine_bucket_name_matches_the_naming_module(streaming, naming):
    """GIVEN the bucket name template THEN, for an account, it is `quarantine_bucket()`."""
    name = streaming["Resources"]["QuarantineBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    account = "123456789012"
    assert name.replace("${AWS::AccountId}", account) == naming.quarantine_bucket(account)
