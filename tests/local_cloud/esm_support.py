"""Deploys streams, test functions and mappings into the emulator for the runner tests:
a Kinesis stream (`Deployment`) or a DynamoDB table's stream (`TableDeployment`)."""

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
        self.stream_arn = self._create_stream()
        self.role = boto3.client("iam").create_role(
            RoleName=f"test-role-{self.suffix}", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        self.mapping_uuids: list[str] = []
        self.function_names: list[str] = []

    def _create_stream(self) -> str:
        self.stream_name = f"test-stream-{self.suffix}"
        self.kinesis.create_stream(StreamName=self.stream_name, ShardCount=self.shards)
        arn: str = self.kinesis.describe_stream(StreamName=self.stream_name)["StreamDescription"][
            "StreamARN"
        ]
        return arn

    def _delete_stream(self) -> None:
        self.kinesis.delete_stream(StreamName=self.stream_name)

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
        """A started runner acting only on this deployment's stream (unless `mapping_filter`
        says otherwise)."""
        kwargs.setdefault("function_processes", self.sandboxed)
        kwargs.setdefault("mapping_filter", lambda m: m.stream_arn == self.stream_arn)
        runner = EventSourceMappingRunner(self.endpoint, state_dir=self.state_dir, **kwargs).start()
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
        self._delete_stream()


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": value}
    return {"S": str(value)}


@dataclass
class TableDeployment(Deployment):
    """A table (partition key `id`, a number) with a stream of `view_type`, mapped to test
    functions; each payload is written as an item, its fields as attributes."""

    view_type: str = "NEW_IMAGE"

    def _create_stream(self) -> str:
        self.dynamodb = boto3.client("dynamodb")
        self.streams = boto3.client("dynamodbstreams")
        self.table_name = f"test-table-{self.suffix}"
        self.dynamodb.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": self.view_type},
        )
        arn: str = self.dynamodb.describe_table(TableName=self.table_name)["Table"][
            "LatestStreamArn"
        ]
        return arn

    def _delete_stream(self) -> None:
        self.dynamodb.delete_table(TableName=self.table_name)

    def put(self, *payloads: dict[str, Any], key: str = "device-1") -> list[str]:
        """Write each payload as an item (an INSERT, or a MODIFY of an item with its `id`);
        returns the sequence numbers of their stream records."""
        for p in payloads:
            self.dynamodb.put_item(
                TableName=self.table_name, Item={k: _attribute(v) for k, v in p.items()}
            )
        numbers = self.sequence_numbers()
        return numbers[len(numbers) - len(payloads) :]

    def remove(self, *ids: int) -> list[str]:
        """Delete the items with these ids (REMOVEs); returns their records' sequence numbers."""
        for item_id in ids:
            self.dynamodb.delete_item(TableName=self.table_name, Key={"id": {"N": str(item_id)}})
        numbers = self.sequence_numbers()
        return numbers[len(numbers) - len(ids) :]

    def shard_id(self) -> str:
        """The id of the stream's one shard."""
        (shard,) = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        shard_id: str = shard["ShardId"]
        return shard_id

    def sequence_numbers(self) -> list[str]:
        """The sequence numbers of every record in the table's stream, read over its API."""
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id(), ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        numbers: list[str] = []
        while True:
            page = self.streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                return numbers
            numbers += [r["dynamodb"]["SequenceNumber"] for r in page["Records"]]
            iterator = page["NextShardIterator"]
