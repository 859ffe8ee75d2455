"""The PostgreSQL stand-in for Redshift refuses what Redshift refuses, so a load that passes
on it is not one a cluster would turn down: COPY from Parquet takes columns by position,
needs FILLRECORD for a file with fewer columns, loads no string into a number, and fails on
a missing mandatory file; dbt-redshift's DDL and date functions run.
"""

from __future__ import annotations

import io
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redshift_connector

from pipeline_platform.env_override import overridden
from tests.support import redshift_shim
from tests.support.warehouses import REDSHIFT_ADMIN, RedshiftOnPostgres

pytestmark = pytest.mark.integration

BUCKET = "redshift-shim-test"
ROLE = "arn:aws:iam::123456789012:role/copy"


@pytest.fixture(scope="module")
def cluster(aws_endpoint: str, redshift_postgres: RedshiftOnPostgres):
    """A database with the stubs, a bucket of Parquet files, and a connection as a client
    of the cluster would make it (redshift_connector, TLS, its startup parameters)."""
    redshift_postgres.server.create_database("shim")
    admin = redshift_postgres.server.connect("shim")
    with admin.cursor() as cur:
        for statement in redshift_shim.stub_statements():
            cur.execute(statement)
    admin.close()
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"}
    )
    files = {
        "two.parquet": pa.table({"id": ["a", "b"], "value": [1.5, 2.5]}),
        "one.parquet": pa.table({"id": ["c"]}),
        "text.parquet": pa.table({"id": ["d"], "value": ["3.5"]}),
    }
    for name, table in files.items():
        body = io.BytesIO()
        pq.write_table(table, body)
        s3.put_object(Bucket=BUCKET, Key=name, Body=body.getvalue())
    with overridden(redshift_postgres.proxy.trust_environment()):
        con = redshift_connector.connect(
            host="127.0.0.1",
            port=redshift_postgres.proxy.port,
            database="shim",
            user=REDSHIFT_ADMIN,
            password="unused",
        )
    con.autocommit = True
    yield con
    con.close()


def _manifest(*names: str, missing: str | None = None) -> str:
    s3 = boto3.client("s3")
    entries = [
        {
            "url": f"s3://{BUCKET}/{name}",
            "mandatory": True,
            "meta": {"content_length": s3.head_object(Bucket=BUCKET, Key=name)["ContentLength"]},
        }
        for name in names
    ]
    if missing:
        entries.append(
            {"url": f"s3://{BUCKET}/{missing}", "mandatory": True, "meta": {"content_length": 1}}
        )
    key = f"manifests/{'-'.join(names)}{missing or ''}.manifest"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"entries": entries}).encode())
    return f"s3://{BUCKET}/{key}"


def _copy(con, table: str, manifest: str, fill_record: bool = True) -> list[tuple]:
    cursor = con.cursor()
    cursor.execute(f"drop table if exists {table}")
    cursor.execute(f"create temp table {table} (id varchar(16), value double precision)")
    cursor.execute(
        f"COPY {table} FROM '{manifest}' WITH CREDENTIALS AS 'aws_iam_role={ROLE}' "
        f"FORMAT AS PARQUET MANIFEST{' FILLRECORD' if fill_record else ''}"
    )
    cursor.execute(f"select id, value from {table} order by id")
    return [tuple(row) for row in cursor.fetchall()]


def test_copy_loads_columns_by_position_and_fillrecord_fills_a_shorter_file(cluster):
    """THEN a file with both columns and one with only the first load together, the shorter
    file's missing trailing column null."""
    rows = _copy(cluster, "stage_both", _manifest("two.parquet", "one.parquet"))
    assert rows == [("a", 1.5), ("b", 2.5), ("c", None)]


def test_copy_without_fillrecord_refuses_a_file_with_fewer_columns(cluster):
    with pytest.raises(redshift_connector.ProgrammingError, match="no FILLRECORD"):
        _copy(cluster, "stage_short", _manifest("one.parquet"), fill_record=False)


def test_copy_refuses_a_parquet_string_for_a_number_column(cluster):
    with pytest.raises(redshift_connector.ProgrammingError, match="double precision"):
        _copy(cluster, "stage_text", _manifest("text.parquet"))


def test_copy_refuses_a_manifest_naming_a_missing_mandatory_file(cluster):
    with pytest.raises(redshift_connector.ProgrammingError, match=r"gone\.parquet"):
        _copy(cluster, "stage_gone", _manifest("two.parquet", missing="gone.parquet"))


def test_dbt_redshift_table_ddl_and_date_functions_run(cluster):
    """THEN a table made as dbt-redshift makes one with `dist` and `sort` exists, and
    `dateadd` with a bare date part and `getdate()` answer as on Redshift."""
    cursor = cluster.cursor()
    cursor.execute(
        "create table hourly diststyle key distkey (device_id) compound sortkey(hour, device_id) "
        "as (select 'sensor-1' as device_id, cast('2024-03-01 10:00:00' as timestamp) as hour)"
    )
    cursor.execute("create table devices diststyle all as (select 1 as n)")
    cursor.execute("select dateadd(hour, -24, hour), getdate() is not null from hourly")
    ((moved, now_known),) = cursor.fetchall()
    assert str(moved) == "2024-02-29 10:00:00"
    assert now_known is True
