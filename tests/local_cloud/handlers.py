"""Small Lambda handlers for the event source mapping tests, driven by their payloads.

Each payload is JSON `{"id": ..., "action": ...}` (a Kinesis record's data, or the
item a table's stream record carries); every invocation is recorded in
`INVOCATIONS` (function name -> list of events) so a test can see exactly what
Lambda would have delivered. Actions: "ok" (also a deletion's, whose record carries only
the keys), "fail" (reported in batchItemFailures), "raise" (the whole invocation errors).
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from tests.local_cloud.handler_log import CONTEXTS, INVOCATIONS
from tests.local_cloud.handler_log import LOCK as _LOCK

__all__ = ["CONTEXTS", "INVOCATIONS", "LOG_DIR_VARIABLE", "payload", "sequence_number"]

#: The function's environment variable naming where it records its invocations.
LOG_DIR_VARIABLE = "TEST_HANDLER_LOG_DIR"


def payload(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload of one Kinesis event record, or the item of a table's stream record
    (its new image, else its old one, else its keys) as plain values."""
    if "kinesis" in record:
        return json.loads(base64.b64decode(record["kinesis"]["data"]))
    change = record["dynamodb"]
    image = change.get("NewImage") or change.get("OldImage") or change["Keys"]
    return {name: _plain(value) for name, value in image.items()}


def _plain(value: dict[str, Any]) -> Any:
    ((kind, content),) = value.items()
    if kind == "N":
        number = float(content)
        return int(number) if number.is_integer() else number
    return content


def sequence_number(record: dict[str, Any]) -> str:
    """A record's sequence number: the item identifier of a partial batch response."""
    if "kinesis" in record:
        return record["kinesis"]["sequenceNumber"]
    return record["dynamodb"]["SequenceNumber"]


def _record(event: dict[str, Any], context: Any) -> None:
    seen = {
        "function_name": context.function_name,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_greeting": os.environ.get("TEST_HANDLER_GREETING"),
        "env_function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "pid": os.getpid(),
    }
    with _LOCK:
        INVOCATIONS[context.function_name].append(event)
        CONTEXTS[context.function_name].append(seen)
        # A function in an execution environment of its own (a worker process) tells the
        # test through a file, one JSON line per invocation.
        log_dir = os.environ.get(LOG_DIR_VARIABLE)
        if log_dir:
            path = os.path.join(log_dir, f"{context.function_name}.jsonl")
            with open(path, "a", encoding="utf-8") as file:
                file.write(json.dumps({"event": event, "context": seen}) + "\n")


def partial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Report records whose action is "fail" in batchItemFailures; raise on "raise"."""
    _record(event, context)
    failures = []
    for record in event["Records"]:
        action = payload(record).get("action", "ok")
        if action == "raise":
            raise RuntimeError("poison record")
        if action == "fail":
            failures.append({"itemIdentifier": sequence_number(record)})
    return {"batchItemFailures": failures}


def fail_once_partial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Report "fail" records as failed only the first time each is seen."""
    _record(event, context)
    seen = [payload(r)["id"] for e in INVOCATIONS[context.function_name][:-1] for r in e["Records"]]
    failures = [
        {"itemIdentifier": sequence_number(r)}
        for r in event["Records"]
        if payload(r).get("action") == "fail" and payload(r)["id"] not in seen
    ]
    return {"batchItemFailures": failures}


def malformed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Report an item identifier that is not a sequence number of the batch, once."""
    _record(event, context)
    if len(INVOCATIONS[context.function_name]) == 1:
        return {"batchItemFailures": [{"itemIdentifier": ""}]}
    return {"batchItemFailures": []}


def always_raise(event: dict[str, Any], context: Any) -> None:
    """Fail every invocation."""
    _record(event, context)
    raise ValueError("downstream unavailable")


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep 5 s on a record whose action is "sleep" (past a short timeout), else succeed."""
    _record(event, context)
    if any(payload(r).get("action") == "sleep" for r in event["Records"]):
        time.sleep(5)
    return {"batchItemFailures": []}


def unmarshallable(event: dict[str, Any], context: Any) -> object:
    """Answer with something that is not JSON."""
    _record(event, context)
    return {"batchItemFailures": {1, 2}}
