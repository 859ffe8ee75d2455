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


class AlertInbox:
    """The alert topic's notifications, collected in the background from a queue of its own
    (the demo's view of what a subscriber receives); `start`, `stop`, `received`."""

    def __init__(self, session: boto3.Session, naming: Naming, endpoint_url: str | None) -> None:
        self._session = session
        self._naming = naming
        self._endpoint_url = endpoint_url
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="alert-inbox", daemon=True)

    def start(self, timeout: float = 30.0) -> AlertInbox:
        """Subscribe, and collect from now on."""
        self._thread.start()
        if not self._subscribed.wait(timeout) and self._error is None:
            raise TimeoutError("the alert inbox did not subscribe in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            tail(
                self._session,
                self._naming,
                endpoint_url=self._endpoint_url,
                emit=self._keep,
                stop=self._stop,
                ready=self._subscribed.set,
            )
        except Exception as error:
            self._error = error
            self._subscribed.set()

    def _keep(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(body)

    def received(self) -> list[dict[str, Any]]:
        """The notifications so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def wait_for(self, device_id: str, state: str, timeout: float) -> bool:
        """Whether a notification of `state` for the device arrives within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.received():
                alert = body.get(contract.NOTIFICATION_ALERT) or {}
                if alert.get("device_id") == device_id and alert.get("state") == state:
                    return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop collecting; the queue and its subscription are removed."""
        self._stop.set()
        self._thread.join(30)
