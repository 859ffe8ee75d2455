"""Fixtures: a fresh table and quarantine bucket on the AWS emulator, a processor wired to them."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stream_processor import aws_clients, contract
from stream_processor import handler as handler_module
from stream_processor.aws_clients import make_client
from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.support.fake_aws import FakeAws
from tests.support.readings_table import create_readings_table

REGION = "ap-southeast-2"


def create_table(dynamodb: Any, name: str) -> None:
    """A table with the contract's key schema and its sparse alerts index."""
    create_readings_table(dynamodb, name, pitr=False, alerts_index=True)


class LambdaEntryPoint:
    """The function as Lambda runs it: `handler.handler`, configured from the environment."""

    def process(self, event: dict, context: object = None) -> dict:
        """Invoke the Lambda entry point with one event."""
        return handler_module.handler(event, context)

    def close(self) -> None:
        """Stop the threads of the processor the entry point built at cold start."""
        if handler_module._processor is not None:
            handler_module._processor.close()


@dataclass
class DeployedProcessor:
    """One test's table and bucket (emulator or mock), and a processor writing to them."""

    config: Config
    dynamodb: Any
    s3: Any
    processor: StreamProcessor | LambdaEntryPoint

    def items(self) -> list[dict]:
        """Every stored item (DynamoDB JSON), ordered by key."""
        items: list[dict] = []
        start: dict[str, Any] = {}
        while True:
            page = self.dynamodb.scan(TableName=self.config.table_name, **start)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return sorted(items, key=lambda i: (i["device_id"]["S"], float(i["timestamp"]["N"])))

    def quarantine_objects(self) -> dict[str, bytes]:
        """Every quarantine object by key."""
        listing = self.s3.list_objects_v2(Bucket=self.config.quarantine_bucket)
        return {
            o["Key"]: self.s3.get_object(Bucket=self.config.quarantine_bucket, Key=o["Key"])[
                "Body"
            ].read()
            for o in listing.get("Contents", [])
        }

    def quarantine_lines(self) -> list[dict]:
        """Every quarantine line, ordered by sequence number."""
        lines = [
            json.loads(line)
            for body in self.quarantine_objects().values()
            for line in body.decode().splitlines()
        ]
        return sorted(lines, key=lambda line: int(line["sequence_number"]))


def raw_bytes(line: dict) -> bytes:
    """The payload a quarantine line preserved, decoded back to its original bytes."""
    return base64.b64decode(line["data"])


@pytest.fixture(scope="session")
def emulator_clients(aws_endpoint: str) -> tuple[Any, Any]:
    """DynamoDB and S3 clients on the emulator, configured as the function configures them."""
    return make_client("dynamodb", 17), make_client("s3", 17)


@pytest.fixture
def cloud(emulator_clients: tuple[Any, Any]) -> Iterator[DeployedProcessor]:
    """A fresh table and bucket (unique names) and a processor with default settings."""
    dynamodb, s3 = emulator_clients
    config = _create_table_and_bucket(dynamodb, s3)
    processor = StreamProcessor(config, dynamodb=dynamodb, s3=s3)
    yield DeployedProcessor(config, dynamodb, s3, processor)
    processor.close()


def _create_table_and_bucket(dynamodb: Any, s3: Any) -> Config:
    suffix = uuid.uuid4().hex[:12]
    config = Config(table_name=f"readings-{suffix}", quarantine_bucket=f"quarantine-{suffix}")
    create_table(dynamodb, config.table_name)
    s3.create_bucket(
        Bucket=config.quarantine_bucket,
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    return config


@pytest.fixture
def mocked_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedProcessor]:
    """The function under moto's in-process `mock_aws`, as a Lambda team unit-tests one.

    No server and no endpoint variable: requests go to the regional endpoints and
    moto answers them inside botocore. The function runs through Lambda's entry
    point from a cold start (a new boto3 session), configured by its environment.
    """
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(aws_clients, "_session", None)
    monkeypatch.setattr(handler_module, "_processor", None)
    mock = mock_aws()
    # Started without a reset: in this test session the AWS emulator is moto's server in
    # this same process, on the same in-memory backends, and a reset would wipe what other
    # fixtures deployed there. The names below are unique and removed afterwards.
    mock.start(reset=False)
    try:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        assert dynamodb.meta.endpoint_url == f"https://dynamodb.{REGION}.amazonaws.com"
        config = _create_table_and_bucket(dynamodb, s3)
        monkeypatch.setenv(contract.ENV_TABLE_NAME, config.table_name)
        monkeypatch.setenv(contract.ENV_QUARANTINE_BUCKET, config.quarantine_bucket)
        entry_point = LambdaEntryPoint()
        yield DeployedProcessor(config, dynamodb, s3, entry_point)
        entry_point.close()
        dynamodb.delete_table(TableName=config.table_name)
        listing = s3.list_objects_v2(Bucket=config.quarantine_bucket).get("Contents", [])
        for listed in listing:
            s3.delete_object(Bucket=config.quarantine_bucket, Key=listed["Key"])
        s3.delete_bucket(Bucket=config.quarantine_bucket)
    finally:
        mock.stop(remove_data=False)


@pytest.fixture(params=["emulator", "mock_aws"])
def any_cloud(request: pytest.FixtureRequest) -> DeployedProcessor:
    """The same checks against the AWS emulator over HTTP and under moto's `mock_aws`."""
    return request.getfixturevalue("cloud" if request.param == "emulator" else "mocked_cloud")


@pytest.fixture
def fake_aws(aws_endpoint: str) -> Iterator[FakeAws]:
    """The fault-injecting DynamoDB/S3 endpoint, served in this process."""
    fake = FakeAws().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_processor(fake_aws: FakeAws) -> Iterator[StreamProcessor]:
    """A processor whose clients talk to the fault-injecting endpoint."""
    config = Config(table_name="readings", quarantine_bucket="quarantine", write_concurrency=4)
    processor = StreamProcessor(
        config,
        dynamodb=make_client("dynamodb", 5, endpoint_url=fake_aws.endpoint_url),
        s3=make_client("s3", 5, endpoint_url=fake_aws.endpoint_url),
    )
    yield processor
    processor.close()
