"""Targeted checks of the streaming stack's alert path: state, bus, rule, topic, silence check."""

from __future__ import annotations

import importlib
import json

from cloudformation.naming import Naming
from cloudformation.outputs import StreamingOutput
from stream_processor import contract


def _grants(template: dict, role: str) -> dict[str, tuple[list[str], list]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return {
        s["Sid"]: (sorted(s["Action"]), s["Resource"])
        for s in policy["PolicyDocument"]["Statement"]
    }


def test_alert_state_table_is_keyed_by_device_and_kind_with_ttl_pitr_and_the_data_key(
    streaming: dict, naming: Naming
) -> None:
    """GIVEN the alert state table THEN (device_id, kind), on demand, TTL, PITR and the CMK."""
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
                "dynamodb:BatchWriteItem",
                "dynamodb:PutItem",
            ]
        ),
        state,
    )
    assert processor["FindTheNewestReadings"] == (["dynamodb:Query"], readings)
    assert processor["SendAlertEvents"] == (["events:PutEvents"], bus)
    check = _grants(streaming, "SilenceCheckRole")
    assert check["ReadAndMarkAlertState"] == (
        sorted(["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"]),
        state,
    )
    assert check["FindTheNewestReadings"] == (["dynamodb:Query"], readings)
    assert check["SendSilenceEvents"] == (["events:PutEvents"], bus)
    assert set(check) == {
        "ReadAndMarkAlertState",
        "FindTheNewestReadings",
        "SendSilenceEvents",
        "UseTheDataKey",
        "WriteOwnLogs",
    }


def test_undelivered_alerts_and_a_failing_silence_check_raise_alarms(streaming: dict) -> None:
    """GIVEN the alarms THEN the dead-letter queue's depth and the check's errors notify."""
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
    for alarm in (dead_letters, errors):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
