"""Helpers for the local IoT Core tests: rules, streams and buckets in the emulator."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from local_cloud import defaults
from local_cloud.iot_rules import RulesEngine

ROLE_ARN = "arn:aws:iam::123456789012:role/iot-rules"


def unique(prefix: str) -> str:
    """A name no other test uses (rule names allow only letters, digits and _)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass
class IotWorld:
    """A slice of the emulator for one test: its rules, streams and buckets, cleaned up."""

    endpoint_url: str
    region: str = defaults.REGION
    rules: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator."""
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def stream(self, shards: int = 1) -> str:
        """Create a Kinesis stream and return its name."""
        name = unique("stream").replace("_", "-")
        self.client("kinesis").create_stream(StreamName=name, ShardCount=shards)
        self.streams.append(name)
        return name

    def bucket(self) -> str:
        """Create an S3 bucket and return its name."""
        name = unique("errors").replace("_", "-")
        self.client("s3").create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region}
        )
        return name

    def rule(
        self,
        sql: str,
        *,
        stream: str | None = None,
        partition_key: str | None = "${device_id}",
        error_bucket: str | None = None,
        error_action: dict[str, Any] | None = None,
        disabled: bool = False,
    ) -> str:
        """Create a topic rule with a Kinesis action (and an S3 error action) via the API."""
        name = unique("rule")
        actions = []
        if stream is not None:
            kinesis: dict[str, Any] = {"streamName": stream, "roleArn": ROLE_ARN}
            if partition_key is not None:
                kinesis["partitionKey"] = partition_key
            actions.append({"kinesis": kinesis})
        payload: dict[str, Any] = {
            "sql": sql,
            "actions": actions,
            "ruleDisabled": disabled,
            "awsIotSqlVersion": "2016-03-23",
        }
        if error_bucket is not None:
            error_action = {
                "s3": {
                    "bucketName": error_bucket,
                    "key": "errors/${topic()}/${newuuid()}.json",
                    "roleArn": ROLE_ARN,
                }
            }
        if error_action is not None:
            payload["errorAction"] = error_action
        self.client("iot").create_topic_rule(ruleName=name, topicRulePayload=payload)
        self.rules.append(name)
        return name

    def records(self, stream: str) -> list[dict[str, Any]]:
        """Every record in the stream, all shards, oldest first per shard."""
        kinesis = self.client("kinesis")
        out: list[dict[str, Any]] = []
        shards = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            out.extend(kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"])
        return out

    def error_messages(self, bucket: str) -> list[dict[str, Any]]:
        """The JSON documents the error action wrote to the bucket."""
        s3 = self.client("s3")
        listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return [
            json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            for obj in listing
        ]

    def cleanup(self) -> None:
        """Delete this test's rules so they cannot route other tests' messages."""
        iot = self.client("iot")
        for name in self.rules:
            iot.delete_topic_rule(ruleName=name)


@pytest.fixture
def world(aws_endpoint: str) -> Iterator[IotWorld]:
    """Per-test resources in the shared emulator; the test's rules are deleted after."""
    w = IotWorld(aws_endpoint)
    yield w
    w.cleanup()


@pytest.fixture
def engine(aws_endpoint: str) -> Iterator[RulesEngine]:
    """A running rules engine; tests call ``refresh()`` after creating rules."""
    eng = RulesEngine(aws_endpoint, defaults.REGION, refresh_interval=60.0).start()
    yield eng
    eng.stop()


def original_payload(error_message: dict[str, Any]) -> bytes:
    """The message bytes recovered from an error-action message."""
    return base64.b64decode(error_message["base64OriginalPayload"])


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until true or timeout (for things that happen in threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
