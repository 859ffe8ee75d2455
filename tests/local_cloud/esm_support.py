"""Deploys streams, test functions and mappings into the emulator for the runner tests."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_cloud.esm_runner import EventSourceMappingRunner
from tests.local_cloud import handlers


def _zip() -> bytes:
    # The emulator stores the code; the runner imports the handler from this checkout.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buf.getvalue()


@dataclass
class Deployment:
    """One stream with mappings to test functions, removed again by `teardown`."""

    endpoint: str
    state_dir: Path
    shards: int = 1
    #: Run the functions in execution environments of their own (worker processes).
    sandboxed: bool = False
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    runners: list[EventSourceMappingRunner] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kinesis = boto3.client("kinesis")
        self.lam = boto3.client("lambda")
        self.sqs = boto3.client("sqs")
        self.stream_name = f"test-stream-{self.suffix}"
        self.kinesis.create_stream(StreamName=self.stream_name, ShardCount=self.shards)
        self.stream_arn = self.kinesis.describe_stream(StreamName=self.stream_name)[
            "StreamDescription"
        ]["StreamARN"]
        self.role = boto3.client("iam").create_role(
            RoleName=f"test-role-{self.suffix}", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        self.mapping_uuids: list[str] = []
        self.function_names: list[str] = []

    def function(self, handler: str, **extra: Any) -> str:
        """Create a function whose handler is `tests.local_cloud.handlers.<handler>`."""
        name = f"test-fn-{handler.replace('_', '-')}-{self.suffix}"
        if self.sandboxed:
            # A sandboxed function records its invocations in a file the test reads.
            environment = extra.setdefault("Environment", {}).setdefault("Variables", {})
            environment[handlers.LOG_DIR_VARIABLE] = str(self.state_dir.parent)
        extra.setdefault("Timeout", 30)
        self.lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=self.role,
            Handler=f"tests.local_cloud.handlers.{handler}",
            Code={"ZipFile": _zip()},
            **extra,
        )
        handlers.INVOCATIONS.pop(name, None)
        self.function_names.append(name)
        return name

    def mapping(self, function: str, **settings: Any) -> str:
        """Map the stream to `function` with the given mapping settings."""
        settings.setdefault("StartingPosition", "TRIM_HORIZON")
        response = self.lam.create_event_source_mapping(
            FunctionName=function, EventSourceArn=self.stream_arn, **settings
        )
        self.mapping_uuids.append(response["UUID"])
        return response["UUID"]

    def queue(self) -> tuple[str, str]:
        """A new SQS queue: (url, arn)."""
        url = self.sqs.create_queue(QueueName=f"test-dlq-{self.suffix}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, arn["Attributes"]["QueueArn"]

    def put(self, *payloads: dict[str, Any], key: str = "device-1") -> list[str]:
        """Put each payload as one record; returns their sequence numbers."""
        return [
            self.kinesis.put_record(
                StreamName=self.stream_name,
                Data=json.dumps(p).encode(),
                PartitionKey=p.get("key", key),
            )["SequenceNumber"]
            for p in payloads
        ]

    def runner(self, **kwargs: Any) -> EventSourceMappingRunner:
        """A started runner acting only on this deployment's stream."""
        kwargs.setdefault("function_processes", self.sandboxed)
        runner = EventSourceMappingRunner(
            self.endpoint,
            state_dir=self.state_dir,
            mapping_filter=lambda m: m.stream_arn == self.stream_arn,
            **kwargs,
        ).start()
        self.runners.append(runner)
        return runner

    def events(self, function: str) -> list[dict[str, Any]]:
        """The events `function` was invoked with, in order."""
        if not self.sandboxed:
            return list(handlers.INVOCATIONS[function])
        return [line["event"] for line in self._sandbox_log(function)]

    def contexts(self, function: str) -> list[dict[str, Any]]:
        """What `function` saw of its context and environment, for each invocation."""
        if not self.sandboxed:
            return list(handlers.CONTEXTS[function])
        return [line["context"] for line in self._sandbox_log(function)]

    def _sandbox_log(self, function: str) -> list[dict[str, Any]]:
        path = self.state_dir.parent / f"{function}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def invocations(self, function: str) -> list[list[dict[str, Any]]]:
        """The payloads of each invocation of `function`, in order."""
        return [[handlers.payload(r) for r in event["Records"]] for event in self.events(function)]

    def teardown(self) -> None:
        """Stop runners and delete what was deployed, so later tests never see it."""
        for runner in self.runners:
            if runner.checkpoints is not None:
                runner.stop()
        for mapping in self.mapping_uuids:
            self.lam.delete_event_source_mapping(UUID=mapping)
        for name in self.function_names:
            self.lam.delete_function(FunctionName=name)
        self.kinesis.delete_stream(StreamName=self.stream_name)
