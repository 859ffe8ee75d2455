"""Targeted checks of the streaming stack's alert path: state, bus, rule, topic, silence check,
notifier."""

from __future__ import annotations

import importlib
import json

from cloudformation.naming import Naming
from cloudformation.outputs import StreamingOutput
from cloudformation.streaming.alerts import ALERT_NOTIFIER_HANDLER
from stream_processor import contract
from tests.cloudformation.conftest import resources_of_type


def _grants(template: dict, role: str) -> dict[str, tuple[list[str], list]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return {
        s["Sid"]: (sorted(s["Action"]), s["Resource"])
        for s in policy["PolicyDocument"]["Statement"]
    }


def test_alert_state_table_is_keyed_by_device_and_kind_with_ttl_pitr_the_data_key_and_a_stream(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the alert state table THEN (device_id, kind), on demand, TTL, PITR, the CMK, and
    a stream of each write's new item (the outbox the notifier reads)."""
    table = streaming["Resources"]["AlertStateTable"]["Properties"]
    assert table["TableName"] == naming.alert_state_table
    assert table["KeySchema"] == [
        {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
        {"AttributeName": contract.STATE_KIND, "KeyType": "RANGE"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": contract.EXPIRES_AT,
        "Enabled": True,
    }
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_rule_sends_the_bus_alert_events_to_the_encrypted_topic_as_a_sentence_and_json(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the alert rule THEN it matches the alert source on the alert bus, and its one
    target is the topic, with a message whose first field is the sentence and whose second
    the event's detail, EventBridge's full retries and a dead-letter queue."""
    resources = streaming["Resources"]
    assert resources["AlertBus"]["Properties"]["Name"] == naming.alert_bus
    rule = resources["AlertNotificationRule"]["Properties"]
    assert rule["EventBusName"] == {"Fn::GetAtt": ["AlertBus", "Name"]}
    assert rule["EventPattern"] == {"source": [contract.ALERT_EVENT_SOURCE]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlertTopic"}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        contract.NOTIFICATION_MESSAGE: "$.detail.message",
        contract.NOTIFICATION_ALERT: "$.detail",
    }
    filled = transformer["InputTemplate"]
    for name in transformer["InputPathsMap"]:
        filled = filled.replace(f"<{name}>", json.dumps(name))
    assert list(json.loads(filled)) == [contract.NOTIFICATION_MESSAGE, contract.NOTIFICATION_ALERT]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AlertDeadLetterQueue", "Arn"]}}
    topic = resources["AlertTopic"]["Properties"]
    assert topic["TopicName"] == naming.alert_topic
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert "KmsMasterKeyId" in resources["AlertDeadLetterQueue"]["Properties"]
    assert streaming["Outputs"][StreamingOutput.ALERT_TOPIC_ARN]["Value"] == {"Ref": "AlertTopic"}


def test_only_the_alert_rule_may_publish_to_the_topic_and_dead_letter_to_the_queue(
    streaming: dict,
) -> None:
    """GIVEN the topic's and the queue's policies THEN EventBridge, from that rule only."""
    resources = streaming["Resources"]
    for policy, action, resource in (
        ("AlertTopicPolicy", "sns:Publish", {"Ref": "AlertTopic"}),
        (
            "AlertDeadLetterQueuePolicy",
            "sqs:SendMessage",
            {"Fn::GetAtt": ["AlertDeadLetterQueue", "Arn"]},
        ),
    ):
        (statement,) = resources[policy]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == [action]
        assert statement["Resource"] == [resource]
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["AlertNotificationRule", "Arn"]}}
        }
    key_policy = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in key_policy if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert events and events[0]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_a_schedule_runs_the_silence_check_every_minute_with_the_processors_settings(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the silence check THEN a rate(1 minute) schedule invokes it (a permission for
    that rule only), its handler exists, and it reads the stream processor's settings."""
    resources = streaming["Resources"]
    schedule = resources["SilenceCheckSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert "EventBusName" not in schedule  # the default bus carries schedules
    (target,) = schedule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SilenceCheckFunction", "Arn"]}
    permission = resources["SilenceCheckInvokedBySchedule"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["SilenceCheckSchedule", "Arn"]}
    check = resources["SilenceCheckFunction"]["Properties"]
    assert check["FunctionName"] == naming.silence_check_function
    module, _, name = check["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    processor = resources["ProcessorFunction"]["Properties"]
    assert check["Environment"] == processor["Environment"]
    assert check["Timeout"] < 60  # done before the next run


def test_alert_grants_are_the_listed_actions_on_this_stacks_resources(streaming: dict) -> None:
    """GIVEN both functions' roles THEN each alert grant names its actions and resources."""
    state = [{"Fn::GetAtt": ["AlertStateTable", "Arn"]}]
    readings = [{"Fn::GetAtt": ["ReadingsTable", "Arn"]}]
    bus = [{"Fn::GetAtt": ["AlertBus", "Arn"]}]
    processor = _grants(streaming, "ProcessorRole")
    assert processor["KeepAlertState"] == (
        sorted(
            [
                "dynamodb:BatchGetItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:DeleteItem",
            ]
        ),
        state,
    )
    assert processor["FindTheNewestReadings"] == (["dynamodb:Query"], readings)
    assert "SendAlertEvents" not in processor
    check = _grants(streaming, "SilenceCheckRole")
    assert check["ReadAndMarkAlertState"] == (
        sorted(["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"]),
        state,
    )
    assert check["FindTheNewestReadings"] == (["dynamodb:Query"], readings)
    assert set(check) == {
        "ReadAndMarkAlertState",
        "FindTheNewestReadings",
        "UseTheDataKey",
        "WriteOwnLogs",
    }
    notifier = _grants(streaming, "AlertNotifierRole")
    assert notifier == {
        "ReadTheAlertStateStream": (
            sorted(
                [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ]
            ),
            [{"Fn::GetAtt": ["AlertStateTable", "StreamArn"]}],
        ),
        "SendAlertEvents": (["events:PutEvents"], bus),
        "ReportFailedBatches": (
            ["sqs:SendMessage"],
            [{"Fn::GetAtt": ["AlertNotifierFailureQueue", "Arn"]}],
        ),
        "UseTheDataKey": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [{"Fn::GetAtt": ["DataKey", "Arn"]}],
        ),
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [{"Fn::GetAtt": ["AlertNotifierLogGroup", "Arn"]}],
        ),
    }


def test_only_the_notifier_puts_events_on_the_bus(templates: dict[str, dict]) -> None:
    """GIVEN every role of every stack THEN the alert notifier's is the only one that may put
    events: the others write alert events to the state's outbox instead."""
    putting = {
        (stack, logical_id)
        for stack, template in templates.items()
        for logical_id, role in resources_of_type(template, "AWS::IAM::Role").items()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "events:PutEvents" in statement["Action"]
    }
    assert putting == {("streaming", "AlertNotifierRole")}


def test_the_notifier_reads_the_outbox_writes_of_the_state_stream_and_reports_failures(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the notifier's event source mapping THEN it reads the alert state table's stream
    from its oldest record, filtered to writes carrying an outbox, in batches of up to 100
    within a second, with partial batch responses, bisection, bounded retries and an
    encrypted on-failure queue of its own."""
    resources = streaming["Resources"]
    mapping = resources["AlertNotifierEventSourceMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["AlertStateTable", "StreamArn"]}
    assert mapping["FunctionName"] == {"Ref": "AlertNotifierFunction"}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    (only,) = mapping["FilterCriteria"]["Filters"]
    assert only["Pattern"] == json.dumps(contract.ALERT_OUTBOX_FILTER)
    assert json.loads(only["Pattern"]) == {
        "dynamodb": {"NewImage": {contract.ALERT_OUTBOX: {"S": [{"exists": True}]}}}
    }
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (100, 1)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10  # never -1 (until the record expires)
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["AlertNotifierFailureQueue", "Arn"]}}
    }
    queue = resources["AlertNotifierFailureQueue"]["Properties"]
    assert queue["QueueName"] == naming.alert_notifier_failure_queue
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert streaming["Outputs"][StreamingOutput.ALERT_NOTIFIER_FAILURE_QUEUE_URL]["Value"] == {
        "Ref": "AlertNotifierFailureQueue"
    }


def test_the_notifier_runs_the_notifier_handler_with_the_processors_settings_and_own_logs(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the notifier function THEN its handler, the function code and settings of the
    stream processor, the data key, and an encrypted log group the key lets CloudWatch Logs
    use."""
    resources = streaming["Resources"]
    notifier = resources["AlertNotifierFunction"]["Properties"]
    processor = resources["ProcessorFunction"]["Properties"]
    assert notifier["FunctionName"] == naming.alert_notifier_function
    assert (
        notifier["Handler"] == ALERT_NOTIFIER_HANDLER == "stream_processor.alert_notifier.handler"
    )
    assert notifier["Code"] == processor["Code"]
    assert notifier["Environment"] == processor["Environment"]
    assert notifier["KmsKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert resources["AlertNotifierFunction"]["DependsOn"] == ["AlertNotifierLogGroup"]
    log_group = resources["AlertNotifierLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == naming.alert_notifier_log_group
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    key_policy = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [
        s for s in key_policy if s["Sid"] == "CloudWatchLogsEncryptsTheAlertNotifierLogGroup"
    ]
    assert naming.alert_notifier_log_group in json.dumps(logs["Condition"])


def test_undelivered_alerts_a_failing_silence_check_and_a_failing_notifier_raise_alarms(
    streaming: dict,
) -> None:
    """GIVEN the alarms THEN the dead-letter queue's depth, the check's errors, and the
    notifier's errors, iterator age and on-failure queue depth notify."""
    alarms = {
        k: r["Properties"]
        for k, r in streaming["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    dead_letters = alarms["AlertDeadLettersAlarm"]
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["AlertDeadLetterQueue", "QueueName"]}}
    ]
    errors = alarms["SilenceCheckErrorsAlarm"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "SilenceCheckFunction"}}
    ]
    notifier = [{"Name": "FunctionName", "Value": {"Ref": "AlertNotifierFunction"}}]
    notifier_errors = alarms["AlertNotifierErrorsAlarm"]
    assert (notifier_errors["Namespace"], notifier_errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert (notifier_errors["Threshold"], notifier_errors["Dimensions"]) == (0, notifier)
    late = alarms["AlertNotifierIteratorAgeAlarm"]
    assert (late["Namespace"], late["MetricName"]) == ("AWS/Lambda", "IteratorAge")
    assert (late["Statistic"], late["Threshold"], late["Dimensions"]) == (
        "Maximum",
        60_000,
        notifier,
    )
    given_up = alarms["AlertNotifierFailuresAlarm"]
    assert (given_up["MetricName"], given_up["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
    )
    assert given_up["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["AlertNotifierFailureQueue", "QueueName"]}}
    ]
    for alarm in (dead_letters, errors, notifier_errors, late, given_up):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
