"""`pipeline-platform alerts tail`: the alert topic's notifications, printed as they arrive.

The tail subscribes a queue of its own to the streaming stack's alert topic (raw
delivery, so each message is the topic's JSON as the rule shaped it), long-polls it,
and removes the subscription and the queue when it stops (Ctrl-C, SIGTERM, `--count`
notifications or `--seconds`). The same works against AWS: the queue's policy lets
only that topic send to it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from cloudformation.deploy import stack_outputs
from cloudformation.naming import STREAMING_STACK, Naming
from cloudformation.outputs import StreamingOutput
from stream_processor import contract

#: How long one receive waits for a message (SQS's longest long poll is 20 s).
POLL_SECONDS = 1


def alert_topic_arn(session: boto3.Session, naming: Naming, endpoint_url: str | None) -> str:
    """The deployed streaming stack's `AlertTopicArn`."""
    cfn = session.client("cloudformation", endpoint_url=endpoint_url)
    return stack_outputs(cfn, naming.stack(STREAMING_STACK))[StreamingOutput.ALERT_TOPIC_ARN]


def format_notification(body: dict[str, Any]) -> str:
    """One line for a person: when the reading (or the silence) was, the state, the sentence."""
    alert = body.get(contract.NOTIFICATION_ALERT) or {}
    moment = alert.get("reading_time") or alert.get("since") or ""
    return f"{moment:<24} {alert.get('state', ''):<13} {body.get(contract.NOTIFICATION_MESSAGE)}"


@contextmanager
def subscribed_queue(
    session: boto3.Session, naming: Naming, topic_arn: str, endpoint_url: str | None
) -> Iterator[tuple[Any, str]]:
    """A queue of this session's own subscribed to the topic: `(sqs client, queue url)`;
    unsubscribed and deleted afterwards."""
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    sns = session.client("sns", endpoint_url=endpoint_url)
    name = naming.alerts_tail_queue(uuid.uuid4().hex[:8])
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    subscription = None
    try:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        subscription = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        yield sqs, url
    finally:
        if subscription is not None:
            sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=url)


def tail(
    session: boto3.Session,
    naming: Naming,
    *,
    endpoint_url: str | None = None,
    emit: Callable[[dict[str, Any]], None],
    count: int | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Hand every notification on the alert topic to `emit` until `count` of them, `seconds`
    or `stop`; return how many there were. `ready` is called once subscribed."""
    topic = alert_topic_arn(session, naming, endpoint_url)
    stop = stop or threading.Event()
    ends = None if seconds is None else time.monotonic() + seconds
    received = 0
    with subscribed_queue(session, naming, topic, endpoint_url) as (sqs, url):
        if ready is not None:
            ready()
        while not stop.is_set() and (ends is None or time.monotonic() < ends):
            answer = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_SECONDS
            )
            for message in answer.get("Messages", []):
                emit(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                received += 1
                if count is not None and received >= count:
                    return received
    return received
