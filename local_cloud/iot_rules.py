"""The local IoT rules engine: route each message through the deployed topic rules.

For every inbound message (from the MQTT broker or the IoT Data ``publish`` API) and
every enabled rule whose topic filter matches, the engine evaluates the rule's SQL, runs
the rule's actions with the SELECT output and, when an action fails, sends ONE message
per rule and message to the rule's ``errorAction`` in AWS's documented shape::

    {"ruleName", "topic", "cloudwatchTraceId", "clientId", "base64OriginalPayload",
     "failures": [{"failedAction", "failedResource", "errorMessage"}]}

Rules are read from the emulator's IoT API (``ListTopicRules`` + ``GetTopicRule``) at
start, every ``refresh_interval`` seconds and on :meth:`RulesEngine.refresh`; disabled
rules are skipped and a rule whose SQL cannot be parsed is skipped with a logged reason.

Supported actions: ``kinesis`` (one PutRecord per message; ``partitionKey`` is a
substitution template evaluated against the ORIGINAL message, and an empty or over-long
key fails the way Kinesis's API validation does), ``s3`` and ``cloudwatchLogs``. Other
action types are logged once and ignored.

Kinesis records are put through moto's Kinesis backend in this process rather than over
HTTP: it is the very state the emulator's HTTP API serves, and the HTTP round trip
(a new connection per request in moto's server) was the bottleneck, about 250 records/s
on a busy 2-core machine against about 6,000/s in-process. S3 and CloudWatch Logs
actions are rare error paths and go over HTTP with boto3.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from . import moto_internals
from .iot_sql import IotSqlError, MessageContext, RuleQuery, SubstitutionTemplate, parse_rule_sql

log = logging.getLogger(__name__)

#: ``clientid()`` of a message that did not arrive over MQTT, as AWS documents.
NON_MQTT_CLIENT_ID = "n/a"

_PARTITION_KEY_MAX = 256
_KINESIS_RECORD_MAX = 1024 * 1024


def now_ms() -> int:
    """Epoch milliseconds now."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class InboundMessage:
    """A message as the rules engine receives it, from either door."""

    topic: str
    payload: bytes
    client_id: str = NON_MQTT_CLIENT_ID
    received_ms: int = field(default_factory=now_ms)


class ActionFailed(Exception):
    """A rule action could not be carried out; becomes one entry of ``failures``."""

    def __init__(self, failed_action: str, failed_resource: str, error_message: str) -> None:
        super().__init__(error_message)
        self.failed_action = failed_action
        self.failed_resource = failed_resource
        self.error_message = error_message

    def as_failure(self) -> dict[str, str]:
        """The ``failures[]`` entry of the error-action message."""
        return {
            "failedAction": self.failed_action,
            "failedResource": self.failed_resource,
            "errorMessage": self.error_message,
        }


class TargetError(Exception):
    """A target service refused a write; the message reads like the service's error."""


class Targets(Protocol):
    """Where actions write; one implementation talks to the emulator."""

    def put_kinesis_record(self, stream_name: str, partition_key: str, data: bytes) -> None:
        """Put one record; raise :class:`TargetError` with the service's message."""

    def put_s3_object(self, bucket: str, key: str, body: bytes) -> None:
        """Write one object; raise :class:`TargetError` on failure."""

    def put_log_event(self, log_group: str, log_stream: str, message: str) -> None:
        """Append one log event; raise :class:`TargetError` on failure."""


class EmulatorTargets:
    """Action targets in the local emulator: Kinesis in-process, S3 and Logs over HTTP."""

    def __init__(
        self, endpoint_url: str, region: str, account_id: str, state_guard: Any = None
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        #: Held shared around each in-process put (a `persistence.StateGuard`), as the
        #: emulator's requests hold it, so a snapshot never sees half a put.
        self.state_guard = state_guard
        # Made now: making a client takes a few hundred milliseconds, which the first
        # failed message would otherwise spend holding up every message behind it.
        self._s3: Any = self._client("s3")
        self._logs: Any = None
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def put_kinesis_record(self, stream_name: str, partition_key: str, data: bytes) -> None:
        """PutRecord through moto's backend, with the API validation the backend skips."""
        if not 1 <= len(partition_key) <= _PARTITION_KEY_MAX:
            bound = "less than or equal to 256" if partition_key else "greater than or equal to 1"
            raise TargetError(
                f"1 validation error detected: Value '{partition_key}' at 'partitionKey' "
                f"failed to satisfy constraint: Member must have length {bound} "
                "(Service: Kinesis, Status Code: 400, Error Code: ValidationException)"
            )
        if len(data) > _KINESIS_RECORD_MAX:
            raise TargetError(
                f"Record size {len(data)} exceeds the Kinesis limit of {_KINESIS_RECORD_MAX} "
                "bytes (Service: Kinesis, Status Code: 400, Error Code: ValidationException)"
            )
        held = self.state_guard.shared() if self.state_guard is not None else nullcontext()
        try:
            with held:
                moto_internals.put_kinesis_record(
                    self.region, self.account_id, stream_name, partition_key, data
                )
        except moto_internals.ApiError as exc:
            raise TargetError(
                f"{exc.message} (Service: Kinesis, Status Code: {exc.status}, "
                f"Error Code: {exc.code})"
            ) from None

    def put_s3_object(self, bucket: str, key: str, body: bytes) -> None:
        """PutObject over the emulator's HTTP API."""
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(str(exc)) from exc

    def put_log_event(self, log_group: str, log_stream: str, message: str) -> None:
        """PutLogEvents over HTTP, creating the log stream on first use."""
        with self._lock:
            self._logs = self._logs or self._client("logs")
        event = {"timestamp": now_ms(), "message": message}
        put = functools.partial(
            self._logs.put_log_events,
            logGroupName=log_group,
            logStreamName=log_stream,
            logEvents=[event],
        )
        try:
            try:
                put()
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                # The group must exist (as in AWS); the stream is ours to create.
                self._logs.create_log_stream(logGroupName=log_group, logStreamName=log_stream)
                put()
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(str(exc)) from exc


# --- Actions -----------------------------------------------------------------------


class Action(Protocol):
    """One rule action, compiled from the rule's JSON."""

    def run(self, payload: bytes, ctx: MessageContext, targets: Targets) -> None:
        """Carry out the action; raise :class:`ActionFailed` when it cannot."""


@dataclass
class KinesisAction:
    """``{"kinesis": {"streamName", "partitionKey"?}}``: one PutRecord per message."""

    stream_name: str
    partition_key: SubstitutionTemplate | None

    def run(self, payload: bytes, ctx: MessageContext, targets: Targets) -> None:
        """Put the SELECT output; the key template sees the original message."""
        # Without a partitionKey AWS spreads records with a random key.
        key = self.partition_key.render(ctx) if self.partition_key else str(uuid.uuid4())
        try:
            targets.put_kinesis_record(self.stream_name, key, payload)
        except TargetError as exc:
            raise ActionFailed(
                "KinesisAction",
                self.stream_name,
                f"Failed to put record in Kinesis stream. The error received was {exc}. "
                f"Message arrived on: {ctx.topic}, Action: kinesis, "
                f"Stream: {self.stream_name}, PartitionKey: {key!r}",
            ) from exc


@dataclass
class S3Action:
    """``{"s3": {"bucketName", "key"}}``: write the payload as one object."""

    bucket: str
    key: SubstitutionTemplate

    def run(self, payload: bytes, ctx: MessageContext, targets: Targets) -> None:
        """Write the payload under the rendered key."""
        key = self.key.render(ctx)
        try:
            targets.put_s3_object(self.bucket, key, payload)
        except TargetError as exc:
            raise ActionFailed(
                "S3Action",
                self.bucket,
                f"Failed to put S3 object. The error received was {exc}. Message arrived on: "
                f"{ctx.topic}, Action: s3, Bucket: {self.bucket}, Key: {key!r}",
            ) from exc


@dataclass
class CloudwatchLogsAction:
    """``{"cloudwatchLogs": {"logGroupName"}}``: one log event per message."""

    log_group: str
    rule_name: str

    def run(self, payload: bytes, ctx: MessageContext, targets: Targets) -> None:
        """Append the payload (as text) to the log group."""
        try:
            targets.put_log_event(
                self.log_group, self.rule_name, payload.decode("utf-8", errors="replace")
            )
        except TargetError as exc:
            raise ActionFailed(
                "CloudwatchLogsAction",
                self.log_group,
                f"Failed to put log event. The error received was {exc}. Message arrived on: "
                f"{ctx.topic}, Action: cloudwatchLogs, LogGroup: {self.log_group}",
            ) from exc


def compile_action(rule_name: str, spec: dict[str, Any]) -> Action | None:
    """Build an action from one element of a rule's ``actions`` (None if unsupported)."""
    if "kinesis" in spec:
        cfg = spec["kinesis"]
        key = cfg.get("partitionKey")
        return KinesisAction(cfg["streamName"], SubstitutionTemplate(key) if key else None)
    if "s3" in spec:
        cfg = spec["s3"]
        return S3Action(cfg["bucketName"], SubstitutionTemplate(cfg["key"]))
    if "cloudwatchLogs" in spec:
        return CloudwatchLogsAction(spec["cloudwatchLogs"]["logGroupName"], rule_name)
    return None


# --- Rules -------------------------------------------------------------------------


@dataclass
class DeployedRule:
    """A topic rule as deployed, compiled for evaluation."""

    name: str
    query: RuleQuery
    actions: list[Action]
    error_action: Action | None
    disabled: bool = False

    @classmethod
    def from_api(cls, rule: dict[str, Any]) -> DeployedRule:
        """Compile the ``rule`` of a GetTopicRule response; raises IotSqlError/KeyError."""
        name = rule["ruleName"]
        actions = []
        for spec in rule.get("actions") or []:
            action = compile_action(name, spec)
            if action is None:
                log.warning("rule %s: action %s is not supported locally; ignored", name, spec)
            else:
                actions.append(action)
        error_spec = rule.get("errorAction") or None
        error_action = compile_action(name, error_spec) if error_spec else None
        if error_spec and error_action is None:
            log.warning("rule %s: error action %s is not supported locally", name, error_spec)
        return cls(
            name=name,
            query=parse_rule_sql(rule["sql"]),
            actions=actions,
            error_action=error_action,
            disabled=bool(rule.get("ruleDisabled")),
        )


@dataclass
class RuleResult:
    """What one rule did with one message."""

    rule_name: str
    matched: bool
    failures: list[ActionFailed] = field(default_factory=list)
    error_action_failed: bool = False


def error_action_message(
    rule_name: str, message: InboundMessage, failures: list[ActionFailed]
) -> dict[str, Any]:
    """The message AWS sends to a rule's error action (one per rule and message)."""
    return {
        "ruleName": rule_name,
        "topic": message.topic,
        "cloudwatchTraceId": str(uuid.uuid4()),
        "clientId": message.client_id,
        "base64OriginalPayload": base64.b64encode(message.payload).decode("ascii"),
        "failures": [f.as_failure() for f in failures],
    }


class RulesEngine:
    """Evaluates the emulator's topic rules for inbound messages, in a worker thread.

    ``submit`` queues a message and returns at once (the broker's event loop and the
    emulator's request threads must not wait on actions); ``process`` handles one message
    synchronously; ``flush`` waits until everything queued so far has been handled. One
    worker keeps each client's messages in order, as Kinesis partition keys require.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        account_id: str | None = None,
        refresh_interval: float = 1.0,
        targets: Targets | None = None,
        rule_filter: Callable[[str], bool] | None = None,
    ) -> None:
        #: When given, only rules whose name it accepts are evaluated.
        self.rule_filter = rule_filter
        self.endpoint_url = endpoint_url
        self.region = region
        self.refresh_interval = refresh_interval
        self._account_id = account_id
        self._targets = targets
        self._iot: Any = None
        self._rules: tuple[DeployedRule, ...] = ()
        self._signatures: dict[str, str] = {}
        #: Rules that could not be compiled, with the reason (visible to people and tests).
        self.rule_errors: dict[str, str] = {}
        #: Counters: received, matched, delivered, failed, error_actions, ...
        self.stats: Counter[str] = Counter()
        self._queue: queue.SimpleQueue[InboundMessage | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # lifecycle
    def start(self) -> RulesEngine:
        """Load the rules and start the worker and refresh threads."""
        if self._threads:
            return self
        self._stop.clear()
        self.refresh()
        self._threads = [
            threading.Thread(target=self._work, name="iot-rules-worker", daemon=True),
            threading.Thread(target=self._refresh_loop, name="iot-rules-refresh", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued messages, then stop both threads."""
        if not self._threads:
            return
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def account_id(self) -> str:
        """The emulator account the rules and streams live in."""
        if self._account_id is None:
            sts = boto3.client("sts", endpoint_url=self.endpoint_url, region_name=self.region)
            self._account_id = sts.get_caller_identity()["Account"]
        return self._account_id

    @property
    def targets(self) -> Targets:
        """Where actions write."""
        if self._targets is None:
            self._targets = EmulatorTargets(self.endpoint_url, self.region, self.account_id)
        return self._targets

    @property
    def rules(self) -> tuple[DeployedRule, ...]:
        """The compiled rules currently in force (enabled and disabled)."""
        return self._rules

    # rules
    def refresh(self) -> None:
        """Re-read the topic rules from the emulator; recompile only those that changed."""
        if self._iot is None:
            self._iot = boto3.client("iot", endpoint_url=self.endpoint_url, region_name=self.region)
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self._iot.list_topic_rules(**kwargs)
            names.extend(
                r["ruleName"]
                for r in page.get("rules", [])
                if self.rule_filter is None or self.rule_filter(r["ruleName"])
            )
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        current = {r.name: r for r in self._rules}
        rules: list[DeployedRule] = []
        signatures: dict[str, str] = {}
        errors: dict[str, str] = {}
        for name in sorted(names):
            try:
                spec = self._iot.get_topic_rule(ruleName=name)["rule"]
            except ClientError as exc:  # deleted between list and get
                log.debug("rule %s vanished during refresh: %s", name, exc)
                continue
            signature = json.dumps(spec, sort_keys=True, default=str)
            signatures[name] = signature
            if name in current and self._signatures.get(name) == signature:
                rules.append(current[name])
                continue
            try:
                rules.append(DeployedRule.from_api(spec))
            except (IotSqlError, KeyError, TypeError) as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                if self.rule_errors.get(name) != errors[name]:
                    log.warning("topic rule %s skipped: %s", name, errors[name])
        self._rules = tuple(rules)
        self._signatures = signatures
        self.rule_errors = errors

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except Exception:  # keep routing with the last good rules
                log.exception("refreshing topic rules failed")

    # messages
    def submit(self, message: InboundMessage) -> None:
        """Queue a message for the worker; never blocks."""
        with self._idle:
            self._pending += 1
        self._queue.put(message)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted message has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _work(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            try:
                self.process(message)
            except Exception:  # one bad message must not stop the engine
                log.exception("rules engine failed on a message from %s", message.topic)
                self.stats["internal_errors"] += 1
            finally:
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()

    def process(self, message: InboundMessage) -> list[RuleResult]:
        """Route one message through every enabled rule whose topic filter matches."""
        self.stats["received"] += 1
        ctx = MessageContext(message.topic, message.payload, message.client_id, message.received_ms)
        results = []
        for rule in self._rules:
            if rule.disabled or not rule.query.matches_topic(message.topic):
                continue
            results.append(self._apply(rule, message, ctx))
        return results

    def _apply(
        self, rule: DeployedRule, message: InboundMessage, ctx: MessageContext
    ) -> RuleResult:
        output = rule.query.evaluate(ctx)
        if output is None:
            self.stats["not_matched"] += 1
            return RuleResult(rule.name, matched=False)
        self.stats["matched"] += 1
        result = RuleResult(rule.name, matched=True)
        for action in rule.actions:
            try:
                action.run(output, ctx, self.targets)
                self.stats["delivered"] += 1
            except ActionFailed as failure:
                self.stats["failed"] += 1
                result.failures.append(failure)
        if result.failures:
            self._send_to_error_action(rule, message, ctx, result)
        return result

    def _send_to_error_action(
        self, rule: DeployedRule, message: InboundMessage, ctx: MessageContext, result: RuleResult
    ) -> None:
        # A failure the error action keeps is expected traffic (a payload without a
        # device id, say): worth a debug line. Without an error action it is lost.
        level = logging.DEBUG if rule.error_action is not None else logging.WARNING
        for failure in result.failures:
            log.log(level, "rule %s: %s", rule.name, failure.error_message)
        if rule.error_action is None:
            return
        body = json.dumps(error_action_message(rule.name, message, result.failures)).encode()
        try:
            rule.error_action.run(body, ctx, self.targets)
            self.stats["error_actions"] += 1
        except ActionFailed as failure:
            # AWS only logs a failing error action; the message is then lost there too.
            result.error_action_failed = True
            self.stats["error_actions_failed"] += 1
            log.error("rule %s: error action failed too: %s", rule.name, failure.error_message)
