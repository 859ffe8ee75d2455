"""The demo's fleet through the whole batch side on DuckDB and on Redshift's SQL on PostgreSQL:
the marts hold the same rows on both.

The fleet is the demo's: its generator, devices, readings, seed and share of malformed
payloads, over the last day. The stream processor stores and quarantines them once;
the second deployment's table and quarantine get the very same items and objects, so
the two warehouses start from the same data. One catch-up run each builds the lake,
the warehouse and dbt's marts; the marts are then compared row for row (floats to a
relative 1e-9: the two engines sum and average in their own order).
"""

from __future__ import annotations

import inspect
import math
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from platform_tools import demo
from platform_tools.batch_runs import materialize
from platform_tools.device_simulator import ReadingGenerator
from stream_processor import contract
from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.pipeline.conftest import Deployment, deployed
from tests.support.kinesis_events import kinesis_record
from tests.support.warehouses import DUCKDB, KINDS, POSTGRES_AS_REDSHIFT

pytestmark = pytest.mark.integration

_DEMO = inspect.signature(demo.run_demo).parameters
DEVICES = _DEMO["devices"].default
READINGS = _DEMO["readings"].default
# As `demo.publish_traffic` runs the fleet.
SEED = 7
MALFORMED_SHARE = 0.03
#: Each mart and the columns that order its rows (its key).
MARTS = {
    "fct_device_hourly": "device_id, reading_hour",
    "fct_alerts": "alert_id",
    "device_health_daily": "device_id, health_date",
    "dim_devices": "device_id",
}


def _fleet_events(now: float) -> list[dict[str, Any]]:
    """The demo fleet's messages over the day before `now`, as Kinesis events of 500."""
    generator = ReadingGenerator(DEVICES, seed=SEED, malformed_share=MALFORMED_SHARE)
    span = 24 * 3600
    records = []
    for i in range(READINGS):
        device = generator.devices[i % DEVICES]
        _, payload = generator.reading(device, now - span + i * span / READINGS)
        records.append(kinesis_record(payload, i, partition_key=device.device_id, arrival=now))
    return [{"Records": records[i : i + 500]} for i in range(0, len(records), 500)]


def _store_fleet(deployment: Deployment) -> None:
    """The stream processor stores and quarantines the fleet's messages."""
    settings = deployment.settings
    # Its own clients, as in Lambda: on the emulator that `AWS_ENDPOINT_URL` names.
    processor = StreamProcessor(
        Config(table_name=settings.table_name, quarantine_bucket=settings.quarantine_bucket)
    )
    try:
        for event in _fleet_events(time.time()):
            assert processor.process(event) == {"batchItemFailures": []}
    finally:
        processor.close()


def _stored(deployment: Deployment) -> tuple[list[dict], dict[str, bytes]]:
    """Every item of the table, and every quarantined object, as stored."""
    settings, s3 = deployment.settings, deployment.client("s3")
    pages = deployment.client("dynamodb").get_paginator("scan")
    items = [i for page in pages.paginate(TableName=settings.table_name) for i in page["Items"]]
    listed = s3.list_objects_v2(
        Bucket=settings.quarantine_bucket, Prefix=settings.quarantine_prefix
    )
    objects = {
        o["Key"]: s3.get_object(Bucket=settings.quarantine_bucket, Key=o["Key"])["Body"].read()
        for o in listed.get("Contents", [])
    }
    return items, objects


def _restore(deployment: Deployment, items: list[dict], objects: dict[str, bytes]) -> None:
    settings, dynamodb, s3 = (
        deployment.settings,
        deployment.client("dynamodb"),
        deployment.client("s3"),
    )
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={settings.table_name: batch})
    for key, body in objects.items():
        s3.put_object(Bucket=settings.quarantine_bucket, Key=key, Body=body)


def _marts(deployment: Deployment) -> dict[str, tuple[list[str], list[tuple]]]:
    """Each mart's columns and rows, in key order."""
    found = {}
    for mart, key in MARTS.items():
        columns = [
            name
            for (name,) in deployment.warehouse.query(
                "select column_name from information_schema.columns where table_schema = "
                f"'analytics' and table_name = '{mart}' order by ordinal_position"
            )
        ]
        found[mart] = (
            columns,
            deployment.warehouse.query(f"select * from analytics.{mart} order by {key}"),
        )
    return found


@pytest.fixture(scope="module")
def marts(aws_endpoint, tmp_path_factory, request) -> dict[str, dict]:
    """GIVEN the demo's fleet stored once and copied to a second deployment WHEN each
    deployment's catch-up run loads its warehouse (DuckDB; PostgreSQL as Redshift)."""
    found: dict[str, dict] = {}
    stored: tuple[list[dict], dict[str, bytes]] | None = None
    for kind in KINDS:
        with deployed(aws_endpoint, tmp_path_factory, kind, request) as deployment:
            if stored is None:
                _store_fleet(deployment)
                stored = _stored(deployment)
            else:
                _restore(deployment, *stored)
            time.sleep(1.2)  # the export margin (see `test_batch_run._settle`)
            run = materialize(warehouse=deployment.warehouse.resource)
            assert all(run["checks"].values()), {k: v for k, v in run["checks"].items() if not v}
            found[kind] = _marts(deployment)
    assert stored is not None
    found["stored_items"] = {"items": len(stored[0])}
    return found


def _comparable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _same(left: Any, right: Any) -> bool:
    left, right = _comparable(left), _comparable(right)
    if isinstance(left, float) and isinstance(right, float | int):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(left, int) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    return bool(left == right)


@pytest.mark.parametrize("mart", list(MARTS))
def test_the_demo_fleet_marts_hold_the_same_rows_on_duckdb_and_on_redshift_sql(marts, mart):
    """THEN each mart has the same columns and the same rows on both warehouses, row for row."""
    columns, rows = marts[DUCKDB][mart]
    pg_columns, pg_rows = marts[POSTGRES_AS_REDSHIFT][mart]
    assert pg_columns == columns
    assert len(pg_rows) == len(rows) > 0
    differing = [
        (dict(zip(columns, left, strict=True)), dict(zip(columns, right, strict=True)))
        for left, right in zip(rows, pg_rows, strict=True)
        if not all(_same(a, b) for a, b in zip(left, right, strict=True))
    ]
    assert not differing, differing[:3]


def test_the_demo_fleet_fills_every_mart(marts):
    """THEN the comparison is not of empty marts: every device has its row, the fleet's
    anomalies raised alerts, and each device has a day of health."""
    assert len(marts[DUCKDB]["dim_devices"][1]) == DEVICES
    codes = {
        row[marts[DUCKDB]["fct_alerts"][0].index("alert_code")]
        for row in marts[DUCKDB]["fct_alerts"][1]
    }
    assert codes == {contract.HIGH_TEMPERATURE, contract.LOW_HUMIDITY}
    days = {row[1] for row in marts[DUCKDB]["device_health_daily"][1]}
    assert all(isinstance(day, date) and not isinstance(day, datetime) for day in days)
    assert marts["stored_items"]["items"] > READINGS * 0.9
