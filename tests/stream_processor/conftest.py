"""Fixtures: a fresh table and quarantine bucket on the AWS emulator, a processor wired to them."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from stream_processor import contract
from stream_processor.aws_clients import make_client
from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.support.fake_aws import FakeAws

REGION = "ap-southeast-2"


def create_table(dynamodb: object, name: str) -> None:
    """A table with the contract's key schema and its sparse alerts index."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
            {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contract.DEVICE_ID, "AttributeType": "S"},
            {"AttributeName": contract.TIMESTAMP, "AttributeType": "N"},
            {"AttributeName": contract.ALERT_DATE, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": contract.ALERTS_INDEX,
                "KeySchema": [
                    {"AttributeName": contract.ALERT_DATE, "KeyType": "HASH"},
                    {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@dataclass
class DeployedProcessor:
    """One test's table and bucket in the emulator, and a processor writing to them."""

    config: Config
    dynamodb: object
    s3: object
    processor: StreamProcessor

    def items(self) -> list[dict]:
        """Every stored item (DynamoDB JSON), ordered by key."""
        items, start = [], {}
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
def emulator_clients(aws_endpoint: str) -> tuple[object, object]:
    """DynamoDB and S3 clients on the emulator, configured as the function configures them."""
    return make_client("dynamodb", 17), make_client("s3", 17)


@pytest.fixture
def cloud(emulator_clients: tuple[object, object]) -> Iterator[DeployedProcessor]:
    """A fresh table and bucket (unique names) and a processor with default settings."""
    dynamodb, s3 = emulator_clients
    suffix = uuid.uuid4().hex[:12]
    config = Config(table_name=f"readings-{suffix}", quarantine_bucket=f"quarantine-{suffix}")
    create_table(dynamodb, config.table_name)
    s3.create_bucket(
        Bucket=config.quarantine_bucket,
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    processor = StreamProcessor(config, dynamodb=dynamodb, s3=s3)
    yield DeployedProcessor(config, dynamodb, s3, processor)
    processor.close()


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
