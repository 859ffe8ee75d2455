"""A deployment in the AWS emulator for the batch pipeline, and readings in contract shape."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from cloudformation.naming import ANALYTICS_STACK, Naming
from cloudformation.outputs import AnalyticsOutput
from local_cloud.cloud import deploy_stacks
from local_cloud.glue_crawler import GlueCrawlerRunner
from pipeline_platform.env_override import overridden
from pipeline_platform.environment import (
    ENV_DEPLOYMENT,
    ENV_PLATFORM_ENV,
    ENV_WAREHOUSE_PATH,
    Settings,
    load_settings,
)
from stream_processor import contract
from tests.support.warehouses import (
    DUCKDB,
    POSTGRES_AS_REDSHIFT,
    DuckDBUnderTest,
    WarehouseUnderTest,
)

_deployments = itertools.count(1)


@dataclass
class Deployment:
    """One isolated deployment (its own names) in the emulator, with a warehouse of its own."""

    settings: Settings
    warehouse: WarehouseUnderTest

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse's file (a deployment on DuckDB only)."""
        assert isinstance(self.warehouse, DuckDBUnderTest)
        return self.warehouse.path

    def client(self, service: str):
        """A boto3 client on the emulator."""
        return boto3.client(
            service, endpoint_url=self.settings.endpoint_url, region_name=self.settings.region
        )

    def last_crawl(self) -> object:
        """When the lake's crawler last started a crawl (None before the first)."""
        crawler = self.client("glue").get_crawler(Name=self.settings.crawler_name)["Crawler"]
        return crawler.get("LastCrawl", {}).get("StartTime")

    def put_reading(self, device_id: str, timestamp: int, sequence: int, **fields) -> None:
        """Store a reading as the stream processor does (contract attribute names)."""
        alerts = []
        if (fields.get(contract.TEMPERATURE) or 0) > 50:
            alerts.append(contract.HIGH_TEMPERATURE)
        if fields.get(contract.HUMIDITY) is not None and fields[contract.HUMIDITY] < 20:
            alerts.append(contract.LOW_HUMIDITY)
        flags = [] if contract.HUMIDITY in fields else [contract.MISSING_HUMIDITY]
        item = {
            contract.DEVICE_ID: device_id,
            contract.TIMESTAMP: Decimal(timestamp),
            contract.ALERTS: alerts,
            contract.QUALITY_FLAGS: flags,
            contract.SEQUENCE_NUMBER: f"4960000000000000000000{sequence:04d}",
            contract.INGESTED_AT: Decimal(timestamp + 2),
            contract.EXPIRES_AT: Decimal(timestamp + 90 * 86400),
            **{k: Decimal(str(v)) for k, v in fields.items()},
        }
        table = boto3.resource(
            "dynamodb", endpoint_url=self.settings.endpoint_url, region_name=self.settings.region
        ).Table(self.settings.table_name)
        table.put_item(Item=item)

    def delete_reading(self, device_id: str, timestamp: int) -> None:
        """Delete a stored reading, as TTL expiry or an operator would."""
        table = boto3.resource(
            "dynamodb", endpoint_url=self.settings.endpoint_url, region_name=self.settings.region
        ).Table(self.settings.table_name)
        table.delete_item(
            Key={contract.DEVICE_ID: device_id, contract.TIMESTAMP: Decimal(timestamp)}
        )

    def put_quarantined(self, day: str, sequence: int, reason: str, arrived: float) -> None:
        """A quarantine line as the stream processor writes it."""
        import json

        line = {
            "reason": reason,
            "detail": "payload is not JSON",
            "device_id": None,
            "data": "SW52YWxpZCBKU09OIERhdGE=",
            "sequence_number": f"4970000000000000000000{sequence:04d}",
            "partition_key": "unknown",
            "approximate_arrival_timestamp": arrived,
            "event_source_arn": "arn:aws:kinesis:ap-southeast-2:123456789012:stream/s",
            "quarantined_at": arrived + 1,
        }
        self.client("s3").put_object(
            Bucket=self.settings.quarantine_bucket,
            Key=f"{self.settings.quarantine_prefix}dt={day}/batch-{sequence}.jsonl",
            Body=(json.dumps(line) + "\n").encode(),
        )


@pytest.fixture(scope="module")
def warehouse_kind() -> str:
    """The warehouse a module's deployment loads: DuckDB, unless the module parametrises
    this fixture over `tests.support.warehouses.KINDS` to run on both."""
    return DUCKDB


@contextlib.contextmanager
def deployed(
    aws_endpoint: str, tmp_path_factory, warehouse_kind: str, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """Both stacks deployed from their templates (as the local cloud deploys them) under an
    environment name of its own, and a warehouse of `warehouse_kind` of its own, for the
    block (the process environment names it)."""
    env = f"pipe{next(_deployments)}{os.getpid() % 1000}"
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    variables = {
        ENV_DEPLOYMENT: env,
        ENV_WAREHOUSE_PATH: str(path),
        ENV_PLATFORM_ENV: "local",
        # The runs' Dagster instance, kept out of the working copy's state dir.
        "DAGSTER_HOME": str(tmp_path_factory.mktemp("dagster")),
    }
    with overridden(variables):
        settings = load_settings()
        outputs = deploy_stacks(Naming(env, settings.region))
        warehouse: WarehouseUnderTest = DuckDBUnderTest(path)
        if warehouse_kind == POSTGRES_AS_REDSHIFT:
            postgres = request.getfixturevalue("redshift_postgres")
            copy_role = outputs[ANALYTICS_STACK][AnalyticsOutput.REDSHIFT_COPY_ROLE_ARN]
            warehouse = postgres.warehouse(copy_role, settings.region)
        # The local cloud's crawler runner makes StartCrawler really crawl the lake.
        crawler_runner = GlueCrawlerRunner(aws_endpoint, settings.region).start()
        try:
            with overridden(warehouse.environment()):
                yield Deployment(settings, warehouse)
        finally:
            crawler_runner.stop()


@pytest.fixture(scope="module")
def deployment(
    aws_endpoint: str, tmp_path_factory, warehouse_kind: str, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """A deployment (see `deployed`) for the module, on its `warehouse_kind`."""
    with deployed(aws_endpoint, tmp_path_factory, warehouse_kind, request) as found:
        yield found
