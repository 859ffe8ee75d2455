"""The Glue crawler runner: StartCrawler over HTTP crawls the emulator's S3 into the catalog."""

from __future__ import annotations

import io
import json
import time
import uuid

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local_cloud.glue_crawler import GlueCrawlerRunner

pytestmark = pytest.mark.integration

EXCLUSIONS = ["**/manifest-*.json", "**/_started", "**/*.md5"]


@pytest.fixture
def crawler_runner(aws_endpoint):
    """The crawler runner hooked into the session's emulator."""
    runner = GlueCrawlerRunner(aws_endpoint).start()
    yield runner
    runner.stop()


@pytest.fixture
def lake(aws_endpoint):
    """A fresh bucket, a database and clients; names unique to the test."""
    suffix = uuid.uuid4().hex[:8]
    s3, glue = boto3.client("s3"), boto3.client("glue")
    bucket = f"lake-{suffix}"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"}
    )
    database = f"database_{suffix}"
    glue.create_database(DatabaseInput={"Name": database})
    return {"s3": s3, "glue": glue, "bucket": bucket, "database": database, "suffix": suffix}


def put_parquet(lake, key, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    lake["s3"].put_object(Bucket=lake["bucket"], Key=key, Body=buf.getvalue())


def put_text(lake, key, text: str) -> None:
    lake["s3"].put_object(Bucket=lake["bucket"], Key=key, Body=text.encode())


def readings(n: int, **extra) -> pa.Table:
    columns = {
        "device_id": pa.array([f"d{i}" for i in range(n)]),
        "timestamp": pa.array(range(n), pa.int64()),
        "temperature": pa.array([20.5] * n),
        "alerts": pa.array([["HIGH_TEMPERATURE"]] * n, pa.list_(pa.string())),
        "ingested_at": pa.array([1_700_000_000_000] * n, pa.timestamp("ms")),
        "valid": pa.array([True] * n),
    }
    columns.update(extra)
    return pa.table(columns)


def crawl(lake, name: str, timeout: float = 10.0) -> dict:
    """Start the crawler over the API and wait until it is READY again."""
    glue = lake["glue"]
    glue.start_crawler(Name=name)
    deadline = time.monotonic() + timeout
    while True:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY":
            return crawler
        assert time.monotonic() < deadline, f"crawler still {crawler['State']}"
        time.sleep(0.05)


def make_crawler(lake, **extra) -> str:
    name = f"crawler-{lake['suffix']}"
    lake["glue"].create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/crawler",
        DatabaseName=lake["database"],
        Targets={"S3Targets": [{"Path": f"s3://{lake['bucket']}/lake/", "Exclusions": EXCLUSIONS}]},
        **extra,
    )
    return name


def columns_of(lake, table: str) -> dict[str, str]:
    t = lake["glue"].get_table(DatabaseName=lake["database"], Name=table)["Table"]
    return {c["Name"]: c["Type"] for c in t["StorageDescriptor"]["Columns"]}


def test_crawl_catalogues_parquet_and_json_with_partitions(crawler_runner, lake):
    # GIVEN a partitioned Parquet dataset, a JSON Lines dataset, and export
    # bookkeeping files (manifests, markers, checksums) in the same prefix
    for day in ("2024-01-01", "2024-01-02"):
        put_parquet(lake, f"lake/sensor_readings/dt={day}/part-0.parquet", readings(3))
    put_text(lake, "lake/sensor_readings/dt=2024-01-01/part-0.parquet.md5", "abc")
    put_text(
        lake,
        "lake/events/batch-1.json",
        json.dumps({"device_id": "d1", "reading": {"t": 1.5, "n": 2}, "tags": ["a"]})
        + "\n"
        + json.dumps({"device_id": "d2", "reading": {"t": 2}, "ok": True})
        + "\n",
    )
    put_text(lake, "lake/events/manifest-files.json", json.dumps({"dataFileS3Key": "x"}))
    put_text(lake, "lake/manifest-summary.json", json.dumps({"itemCount": 3}))
    put_text(lake, "lake/events/_started", "")
    name = make_crawler(lake, TablePrefix="raw_")
    # WHEN the crawler is started through the Glue API
    crawler = crawl(lake, name)
    # THEN it is READY again and its last crawl succeeded
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert "ErrorMessage" not in crawler["LastCrawl"]
    # AND exactly the two datasets became tables (no manifest table or column)
    tables = lake["glue"].get_tables(DatabaseName=lake["database"])["TableList"]
    assert sorted(t["Name"] for t in tables) == ["raw_events", "raw_sensor_readings"]
    # AND the Parquet table has Glue types, a dt partition key and Parquet's SerDe
    readings_table = next(t for t in tables if t["Name"] == "raw_sensor_readings")
    assert columns_of(lake, "raw_sensor_readings") == {
        "device_id": "string",
        "timestamp": "bigint",
        "temperature": "double",
        "alerts": "array<string>",
        "ingested_at": "timestamp",
        "valid": "boolean",
    }
    assert readings_table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    sd = readings_table["StorageDescriptor"]
    assert sd["Location"] == f"s3://{lake['bucket']}/lake/sensor_readings/"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert (
        sd["SerdeInfo"]["SerializationLibrary"]
        == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert readings_table["Parameters"]["classification"] == "parquet"
    # AND one partition per dt folder, each with its location
    partitions = lake["glue"].get_partitions(
        DatabaseName=lake["database"], TableName="raw_sensor_readings"
    )["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions) == [
        (["2024-01-01"], f"s3://{lake['bucket']}/lake/sensor_readings/dt=2024-01-01/"),
        (["2024-01-02"], f"s3://{lake['bucket']}/lake/sensor_readings/dt=2024-01-02/"),
    ]
    # AND the JSON table merges its sample: structs, arrays, widened numbers
    assert columns_of(lake, "raw_events") == {
        "device_id": "string",
        "reading": "struct<t:double,n:bigint>",
        "tags": "array<string>",
        "ok": "boolean",
    }
    events = next(t for t in tables if t["Name"] == "raw_events")
    assert events["Parameters"]["classification"] == "json"
    assert events["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    )
    assert events["PartitionKeys"] == []


def test_recrawl_appends_a_new_column_and_adds_the_new_partition(crawler_runner, lake):
    # GIVEN a crawled table
    put_parquet(lake, "lake/sensor_readings/dt=2024-01-01/part-0.parquet", readings(2))
    name = make_crawler(lake)
    crawl(lake, name)
    # WHEN a new day's data arrives with an extra column and the crawler runs again
    put_parquet(
        lake,
        "lake/sensor_readings/dt=2024-01-02/part-0.parquet",
        readings(2, pressure=pa.array([1013.2, 1009.8])),
    )
    crawler = crawl(lake, name)
    # THEN the column is appended after the existing ones and the day is a partition
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert list(columns_of(lake, "sensor_readings").items())[-1] == ("pressure", "double")
    assert len(columns_of(lake, "sensor_readings")) == 7
    partitions = lake["glue"].get_partitions(
        DatabaseName=lake["database"], TableName="sensor_readings"
    )["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["2024-01-01", "2024-01-02"]


def test_log_policy_keeps_the_schema_but_adds_partitions(crawler_runner, lake):
    # GIVEN a crawler whose schema change policy only logs updates
    put_parquet(lake, "lake/sensor_readings/dt=2024-01-01/part-0.parquet", readings(2))
    name = make_crawler(lake, SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    crawl(lake, name)
    # WHEN a new column appears and the crawler runs again
    put_parquet(
        lake,
        "lake/sensor_readings/dt=2024-01-02/part-0.parquet",
        readings(2, pressure=pa.array([1.0, 2.0])),
    )
    crawl(lake, name)
    # THEN the table's columns are unchanged, yet the new partition is catalogued
    assert "pressure" not in columns_of(lake, "sensor_readings")
    partitions = lake["glue"].get_partitions(
        DatabaseName=lake["database"], TableName="sensor_readings"
    )["Partitions"]
    assert len(partitions) == 2


def test_unreadable_file_fails_the_crawl_with_a_message(crawler_runner, lake):
    # GIVEN a file named .parquet that is not Parquet
    put_text(lake, "lake/broken/part-0.parquet", "this is not parquet")
    name = make_crawler(lake)
    # WHEN crawled
    crawler = crawl(lake, name)
    # THEN the crawler is READY, the last crawl FAILED and says which file
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    assert "lake/broken/part-0.parquet" in crawler["LastCrawl"]["ErrorMessage"]
    # AND no table was half-written
    tables = lake["glue"].get_tables(DatabaseName=lake["database"])["TableList"]
    assert tables == []
