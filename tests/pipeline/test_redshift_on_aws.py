"""The warehouse load and the dbt build on a real Redshift cluster: what PostgreSQL cannot
prove (COPY's Parquet type coercion from S3 with the IAM role, identifier case folding,
unenforced keys, VARCHAR lengths in bytes, dbt-redshift on the real catalog).

Skipped unless the cluster and a lake bucket are named, with AWS credentials, in a session
of its own (the local-cloud tests point every AWS client at the emulator):

    REDSHIFT_HOST=... REDSHIFT_SECRET_ARN=... REDSHIFT_COPY_ROLE_ARN=... \\
    REDSHIFT_LAKE_BUCKET=... [REDSHIFT_PORT=5439 REDSHIFT_DATABASE=dev] \\
    .venv/bin/python -m pytest -m aws tests/pipeline/test_redshift_on_aws.py

It writes `raw.*`, `pipeline.*`, `staging.*` and `analytics.*` in that database (use a
scratch one), and Parquet files under `pipeline-test/<run>/` of the bucket, which it
removes. The secret holds the `username` and `password` the load and dbt connect with
(the cluster's admin secret does); the COPY role must be attached to the cluster and
able to read the bucket.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import boto3
import duckdb
import pytest
import redshift_connector
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.env_override import overridden
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.load_sql import table_columns
from pipeline_platform.resources.warehouse import RedshiftWarehouse
from pipeline_platform.resources.warehouse_load import LakeFile, LoadSpec
from tests.dbt.dbt_project_runner import run_dbt

REQUIRED = (
    "REDSHIFT_HOST",
    "REDSHIFT_SECRET_ARN",
    "REDSHIFT_COPY_ROLE_ARN",
    "REDSHIFT_LAKE_BUCKET",
)
_missing = [name for name in REQUIRED if not os.environ.get(name)]

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(
        bool(_missing), reason=f"needs a Redshift cluster: set {', '.join(_missing)}"
    ),
]

DAY_START = 1700092800  # 2023-11-16T00:00:00Z
EXTRAS = {"pressure": "double"}


def _upload_change_set(
    bucket: str, key: str, rows: int, version: int, extras: dict[str, str]
) -> LakeFile:
    """Readings as the lake writes a change set of lake version `version` (the readings'
    write time): its columns in order, `pressure` last."""
    columns = table_columns(_spec(bucket, 0, (), extras, ws.READINGS))
    values = {
        "device_id": "'sensor-' || (i % 3)",
        "reading_epoch": f"cast({DAY_START} + 60 * i as double)",
        "reading_at": f"make_timestamp(({DAY_START} + 60 * i) * 1000000)",
        "temperature": "cast(20 + i as double)",
        "humidity": "cast(50 as double)",
        "alerts": "''",
        "quality_flags": "''",
        "sequence_number": "'seq-' || i",
        "ingested_at": f"make_timestamp(({DAY_START} + 60 * i + 2) * 1000000)",
        "written_at": f"make_timestamp(({DAY_START} + 60 * i + 3 + {version}) * 1000000)",
        "pressure": "cast(1000 + i as double)",
    }
    select = ", ".join(f"{values[c]} as {c}" for c in columns)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "changes.parquet"
        duckdb.execute(
            f"copy (select {select} from range({rows}) t(i)) to '{path}' (format parquet)"
        )
        boto3.client("s3").upload_file(str(path), bucket, key)
        return LakeFile(key, path.stat().st_size)


def _spec(bucket, version, files, extras, table, prefix="pipeline-test/") -> LoadSpec:
    return LoadSpec(
        table=table,
        bucket=bucket,
        lake_prefix=f"{prefix}lake/{table.name}/",
        files=tuple(files),
        lake_version=version,
        manifest_key=f"{prefix}manifests/{table.name}/v{version:08d}.manifest",
        lake_id=f"aws-test-{prefix.strip('/').rsplit('/', 1)[-1]}",
        change_sets=True,
        extra_columns=extras,
    )


def _query(warehouse: RedshiftWarehouse, secret: dict, sql: str) -> list[tuple]:
    """Rows of `sql` on the cluster, as an analyst reads them (TLS, the secret's user)."""
    rs = warehouse.cluster()
    with redshift_connector.connect(
        host=rs.host,
        port=rs.port,
        database=rs.database,
        user=secret["username"],
        password=secret["password"],
    ) as con:
        cursor = con.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def on_redshift():
    """GIVEN two change sets in the bucket (the second with `pressure`) WHEN the Redshift
    resource loads them, and the other raw tables (empty), and dbt builds on the cluster."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("AWS_ENDPOINT_URL points at an emulator: run `pytest -m aws` on its own")
    bucket = os.environ["REDSHIFT_LAKE_BUCKET"]
    region = boto3.Session().region_name
    prefix = f"pipeline-test/{uuid.uuid4().hex[:12]}/"
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["REDSHIFT_SECRET_ARN"])[
            "SecretString"
        ]
    )
    warehouse = RedshiftWarehouse(
        secrets=SecretsManagerResource(region_name=region),
        host=os.environ["REDSHIFT_HOST"],
        port=int(os.environ.get("REDSHIFT_PORT", "5439")),
        database=os.environ.get("REDSHIFT_DATABASE", "dev"),
        copy_role_arn=os.environ["REDSHIFT_COPY_ROLE_ARN"],
        secret_arn=os.environ["REDSHIFT_SECRET_ARN"],
    )
    cloud = CloudResource(s3=S3Resource(region_name=region))
    try:
        first = _upload_change_set(bucket, f"{prefix}changes/v1.parquet", 30, 1, {})
        found = {"first": warehouse.load(_spec(bucket, 1, [first], {}, ws.READINGS, prefix), cloud)}
        second = _upload_change_set(bucket, f"{prefix}changes/v2.parquet", 40, 2, EXTRAS)
        found["second"] = warehouse.load(
            _spec(bucket, 2, [second], EXTRAS, ws.READINGS, prefix), cloud
        )
        for table in (ws.QUARANTINE, ws.RULE_ERRORS):
            warehouse.load(_spec(bucket, 1, [], {}, table, prefix), cloud)
        dbt_env = warehouse.dbt_environment() | {
            "REDSHIFT_USER": secret["username"],
            "REDSHIFT_PASSWORD": secret["password"],
            "REDSHIFT_AUTH_METHOD": "database",
        }
        with overridden(dbt_env), tempfile.TemporaryDirectory() as work:
            run_dbt(["build", "--target", "redshift", "--full-refresh"], Path(work))
        found["rows"] = _query(
            warehouse, secret, "select count(*), count(pressure) from raw.sensor_readings"
        )[0]
        found["hours"] = _query(
            warehouse, secret, "select sum(reading_count) from analytics.fct_device_hourly"
        )[0][0]
        yield found
    finally:
        s3 = boto3.client("s3")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        for each in listed:
            s3.delete_object(Bucket=bucket, Key=each["Key"])


def test_copy_loads_the_change_sets_and_merges_them_by_key(on_redshift):
    """THEN the first COPY loaded 30 readings; the second 40, 30 of them new versions of
    the first's keys and 10 new keys, each with its `pressure` (a column it added)."""
    assert on_redshift["first"].changed_rows == 30
    assert on_redshift["second"].added_columns == ("pressure",)
    assert on_redshift["second"].changed_rows == 40
    assert on_redshift["rows"] == (40, 40)


def test_dbt_builds_the_marts_on_the_cluster(on_redshift):
    """THEN dbt-redshift built every model and passed every test (`run_dbt` raises
    otherwise), and the hourly mart counts every reading once."""
    assert on_redshift["hours"] == 40
