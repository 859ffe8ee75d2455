"""EventBridge's delivery to targets, for the targets the emulator leaves alone.

moto matches a PutEvents event against every rule of its bus but delivers only to
SQS, log group, archive and event-bus targets; `moto_patches` hands the matching
targets it does not deliver (SNS topics, Lambda functions) to this module, and the
schedule runner (`local_cloud.schedules`) hands it its scheduled events. As
EventBridge does, after PutEvents has answered and on a thread of its own, it:

- shapes the target's input: the event itself, a constant `Input`, an `InputPath`, or
  an `InputTransformer` (variables from JSON paths, filled into the template: inside
  a quoted string as the plain value, elsewhere as JSON);
- publishes it to the topic through the emulator's SNS API, whose subscriptions (SQS
  queues, ...) then receive it, or invokes the function asynchronously (in an execution
  environment of its own, as the event source mapping runner invokes functions);
- retries a failed delivery with backoff, within the target's `RetryPolicy`; a target
  that does not exist is not retried. An event that could not be delivered goes to the
  target's dead-letter queue with EventBridge's message attributes (`RULE_ARN`,
  `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`,
  `RETRY_ATTEMPTS`), or is dropped without one.

Locally the retries are compressed: at most `MAX_LOCAL_ATTEMPTS` attempts, seconds
apart, rather than EventBridge's 185 over a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_cloud import moto_patches

log = logging.getLogger(__name__)

#: Attempts at one delivery before the dead-letter queue (EventBridge makes up to 185).
MAX_LOCAL_ATTEMPTS = 3
_BACKOFF_S = 0.2
#: Errors that no retry cures: EventBridge sends such events to the DLQ at once.
_PERMANENT = {"NotFound", "ResourceNotFoundException", "InvalidParameter", "AuthorizationError"}
_PLACEHOLDER = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Delivery:
    """One event for one target of one rule."""

    rule_arn: str
    target: dict[str, Any]
    event: dict[str, Any]


def aws_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to targets: `time` as ISO-8601 UTC, no moto-only keys."""
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    moment = shaped.get("time")
    if isinstance(moment, int | float):
        stamp = dt.datetime.fromtimestamp(moment, dt.UTC)
        shaped["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(moment, dt.datetime):
        shaped["time"] = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return shaped


def _path(expression: str, event: dict[str, Any]) -> tuple[bool, Any]:
    """(found, value) of a JSON path in the event."""
    from jsonpath_ng.ext import parse

    matches = parse(expression).find(event)
    return (True, matches[0].value) if matches else (False, None)


def _fill(template: str, values: dict[str, Any]) -> str:
    """The template with each known `<name>` replaced: as the plain value inside a quoted
    JSON string (EventBridge escapes nothing there), as JSON text elsewhere."""
    out: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(template):
        char = template[position]
        if char == "<":
            match = _PLACEHOLDER.match(template, position)
            if match and match.group(1) in values:
                value = values[match.group(1)]
                if in_string:
                    out.append(value if isinstance(value, str) else json.dumps(value))
                else:
                    out.append(json.dumps(value))
                position = match.end()
                continue
        if in_string and char == "\\" and not escaped:
            escaped = True
            out.append(char)
            position += 1
            continue
        if char == '"' and not escaped:
            in_string = not in_string
        escaped = False
        out.append(char)
        position += 1
    return "".join(out)


def target_input(rule_arn: str, target: dict[str, Any], event: dict[str, Any]) -> str:
    """What the target receives for `event`: EventBridge's input rules, as text."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        _, value = _path(target["InputPath"], event)
        return json.dumps(value)
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(event)
    values: dict[str, Any] = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_arn.rsplit("/", 1)[-1],
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }
    for name, expression in (transformer.get("InputPathsMap") or {}).items():
        found, value = _path(expression, event)
        if found:  # a path the event lacks makes no variable, as in EventBridge
            values[name] = value
    return _fill(transformer["InputTemplate"], values)


class DeliveryError(Exception):
    """A target did not take the event: EventBridge's error code and the reason."""

    def __init__(self, code: str, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


class EventDelivery:
    """Delivers events to SNS and Lambda targets in the background; `start`, `stop`."""

    def __init__(self, clients: Any, invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        """`clients(service)` gives the emulator's boto3 clients; `invoke(function_arn,
        event)` runs a function with one event (an asynchronous invocation)."""
        self._clients = clients
        self._invoke = invoke
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.stats: Counter[str] = Counter()

    def start(self) -> EventDelivery:
        """Take the targets moto hands over, and deliver them."""
        self._thread = threading.Thread(target=self._run, name="event-delivery", daemon=True)
        self._thread.start()
        moto_patches.on_event_target.append(self.submit)
        return self

    def stop(self) -> None:
        """Stop taking events, deliver what is queued, and end."""
        if self.submit in moto_patches.on_event_target:
            moto_patches.on_event_target.remove(self.submit)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30)
            self._thread = None

    def submit(self, rule_arn: str, target: dict[str, Any], event: dict[str, Any]) -> None:
        """Queue one event for one target (never blocks: called inside PutEvents)."""
        self.stats["received"] += 1
        self._queue.put(Delivery(rule_arn, target, aws_event(event)))

    def wait_idle(self, timeout: float) -> None:
        """Block until everything queued so far has been delivered (or dead-lettered)."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._queue.unfinished_tasks} events not delivered yet")
                self._queue.all_tasks_done.wait(remaining)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if delivery is None:
                    return
                self._deliver(delivery)
            except Exception:
                log.exception("delivering an event to %s failed", delivery and delivery.target)
            finally:
                self._queue.task_done()

    def _deliver(self, delivery: Delivery) -> None:
        target = delivery.target
        policy = target.get("RetryPolicy") or {}
        attempts = min(MAX_LOCAL_ATTEMPTS, 1 + int(policy.get("MaximumRetryAttempts", 185)))
        payload = target_input(delivery.rule_arn, target, delivery.event)
        for attempt in range(1, attempts + 1):
            try:
                self._send(target["Arn"], payload)
            except DeliveryError as error:
                if error.permanent or attempt == attempts:
                    self._dead_letter(delivery, error, attempt)
                    return
                time.sleep(_BACKOFF_S * 2 ** (attempt - 1))
            else:
                self.stats["delivered"] += 1
                return

    def _send(self, arn: str, payload: str) -> None:
        from botocore.exceptions import ClientError

        service = arn.split(":")[2]
        try:
            if service == "sns":
                self._clients("sns").publish(TopicArn=arn, Message=payload)
            elif service == "lambda":
                self._invoke(arn, json.loads(payload))
            else:
                raise DeliveryError("NO_RESOURCE", f"no local delivery to {service}", True)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            permanent = code in _PERMANENT
            raise DeliveryError(
                "NO_RESOURCE" if permanent else "THROTTLING", str(exc), permanent
            ) from None
        except DeliveryError:
            raise
        except Exception as exc:  # the function failed, or the emulator did not answer
            raise DeliveryError("TIMEOUT", f"{type(exc).__name__}: {exc}", False) from None

    def _dead_letter(self, delivery: Delivery, error: DeliveryError, attempts: int) -> None:
        dead_letters = (delivery.target.get("DeadLetterConfig") or {}).get("Arn")
        log.warning(
            "event for %s not delivered (%s: %s)%s",
            delivery.target["Arn"],
            error.code,
            error.message,
            "; sent to its dead-letter queue" if dead_letters else "; dropped",
        )
        if not dead_letters:
            self.stats["dropped"] += 1
            return
        account, name = dead_letters.split(":")[4:6]
        sqs = self._clients("sqs")
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

        def text(value: str) -> dict[str, str]:
            return {"DataType": "String", "StringValue": value}

        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(delivery.event),
            MessageAttributes={
                "RULE_ARN": text(delivery.rule_arn),
                "TARGET_ARN": text(delivery.target["Arn"]),
                "ERROR_CODE": text(error.code),
                "ERROR_MESSAGE": text(error.message[:1000]),
                "EXHAUSTED_RETRY_CONDITION": text("MaximumRetryAttempts"),
                "RETRY_ATTEMPTS": {"DataType": "Number", "StringValue": str(attempts - 1)},
            },
        )
        self.stats["dead_lettered"] += 1
