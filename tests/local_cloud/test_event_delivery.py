"""EventBridge's delivery as the local cloud makes it: input transformers, SNS and Lambda
targets, the dead-letter queue, and scheduled rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local_cloud.event_delivery import EventDelivery, target_input
from local_cloud.schedules import ScheduleRunner, rate_seconds

EVENT = {
    "version": "0",
    "id": "e-1",
    "detail-type": "Alert raised",
    "source": "tests",
    "time": "2026-12-01T10:00:00Z",
    "detail": {"device": "fridge-1", "value": 55.5, "message": 'it says "hot"'},
}


def test_a_json_template_takes_values_as_json_and_inside_strings_as_they_are() -> None:
    """GIVEN an input transformer with variables in and out of quoted strings
    WHEN an event is shaped by it
    THEN outside quotes a value is its JSON (strings quoted, objects whole), inside a quoted
    string its plain text, and a path the event lacks leaves its variable unfilled."""
    target = {
        "InputTransformer": {
            "InputPathsMap": {
                "device": "$.detail.device",
                "detail": "$.detail",
                "v": "$.detail.value",
            },
            "InputTemplate": '{"who": <device>, "all": <detail>, "text": "<device> at <v>"}',
        }
    }
    shaped = json.loads(target_input("arn:aws:events:r:1:rule/bus/r", target, EVENT))
    assert shaped == {"who": "fridge-1", "all": EVENT["detail"], "text": "fridge-1 at 55.5"}
    assert target_input("arn", {"InputPath": "$.detail.value"}, EVENT) == "55.5"
    assert target_input("arn", {"Input": '{"fixed": 1}'}, EVENT) == '{"fixed": 1}'
    assert json.loads(target_input("arn", {}, EVENT)) == EVENT


def test_rate_expressions_and_nothing_else_have_a_period() -> None:
    """GIVEN schedule expressions THEN rate(...) has its period in seconds, cron none."""
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("cron(0 12 * * ? *)") is None


@pytest.fixture
def delivery(aws_endpoint: str) -> Iterator[tuple[EventDelivery, list[tuple[str, dict]]]]:
    """The delivery on the test emulator; Lambda invocations recorded, not run."""
    invoked: list[tuple[str, dict]] = []

    def clients(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_endpoint)

    running = EventDelivery(clients, lambda arn, event: invoked.append((arn, event))).start()
    yield running, invoked
    running.stop()


def test_an_event_reaches_the_topics_subscribers_or_else_the_dead_letter_queue(
    aws_endpoint: str, delivery: tuple[EventDelivery, list]
) -> None:
    """GIVEN a bus whose rule targets a topic (a queue subscribed to it) and a topic that
    does not exist, each target with a dead-letter queue
    WHEN one event matching the rule is put on the bus
    THEN the subscriber receives the transformed message, and the event for the missing
    topic lands in the dead-letter queue with EventBridge's attributes."""
    running, _ = delivery
    events = boto3.client("events", endpoint_url=aws_endpoint)
    sns = boto3.client("sns", endpoint_url=aws_endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    name = f"d-{uuid.uuid4().hex[:8]}"

    def queue(suffix: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=f"{name}-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, arn["Attributes"]["QueueArn"]

    inbox, inbox_arn = queue("inbox")
    dead, dead_arn = queue("dead")
    topic = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=inbox_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    events.create_event_bus(Name=name)
    events.put_rule(Name="r", EventBusName=name, EventPattern='{"source": ["tests"]}')
    transformer = {
        "InputPathsMap": {"m": "$.detail.message"},
        "InputTemplate": '{"message": <m>}',
    }
    events.put_targets(
        Rule="r",
        EventBusName=name,
        Targets=[
            {
                "Id": "topic",
                "Arn": topic,
                "InputTransformer": transformer,
                "DeadLetterConfig": {"Arn": dead_arn},
            },
            {"Id": "gone", "Arn": f"{topic}-gone", "DeadLetterConfig": {"Arn": dead_arn}},
        ],
    )
    events.put_events(
        Entries=[
            {
                "Source": "tests",
                "DetailType": "t",
                "Detail": json.dumps(EVENT["detail"]),
                "EventBusName": name,
            }
        ]
    )
    running.wait_idle(30)

    (received,) = sqs.receive_message(QueueUrl=inbox)["Messages"]
    assert json.loads(received["Body"]) == {"message": 'it says "hot"'}
    (dead_letter,) = sqs.receive_message(QueueUrl=dead, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in dead_letter["MessageAttributes"].items()}
    assert attributes["TARGET_ARN"] == f"{topic}-gone"
    assert attributes["ERROR_CODE"] == "NO_RESOURCE"
    assert attributes["RULE_ARN"].endswith(f"rule/{name}/r")
    assert json.loads(dead_letter["Body"])["detail"] == EVENT["detail"]


def test_a_scheduled_rule_fires_its_lambda_target_with_a_scheduled_event(
    aws_endpoint: str, delivery: tuple[EventDelivery, list]
) -> None:
    """GIVEN a rate(1 minute) rule targeting a function
    WHEN the schedule runner looks at it now, then a minute later
    THEN nothing fires at once, and a minute later the function gets one "Scheduled Event"
    naming the rule."""
    running, invoked = delivery
    events = boto3.client("events", endpoint_url=aws_endpoint)
    name = f"every-minute-{uuid.uuid4().hex[:8]}"
    function = f"arn:aws:lambda:ap-southeast-2:123456789012:function:{name}"
    rule_arn = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "f", "Arn": function}])
    runner = ScheduleRunner(events, running.submit)
    try:
        runner.fire_due(1_000_000.0)
        running.wait_idle(10)
        assert [arn for arn, _ in invoked if arn == function] == []
        runner.fire_due(1_000_060.0)
        running.wait_idle(10)
    finally:
        events.remove_targets(Rule=name, Ids=["f"])
        events.delete_rule(Name=name)

    ((_, event),) = [(arn, e) for arn, e in invoked if arn == function]
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert event["resources"] == [rule_arn]
    assert event["time"].endswith("Z")
