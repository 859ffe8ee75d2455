"""Each moto internal the local cloud relies on, one test each, named after it.

The local cloud reads and calls moto's models through `local_cloud.moto_internals` only.
These tests pin what each of those functions expects of moto (attribute names, types,
signatures), against the emulator of the session (moto's server in this process, written
to over HTTP as every client does). When an upgrade of moto changes one of them, the
test named after it fails, instead of the demo.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import inspect
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_cloud import defaults, moto_internals, moto_patches

ACCOUNT = "123456789012"  # what moto answers for the local cloud's credentials
REGION = defaults.REGION


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kinesis(aws_endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=aws_endpoint)


@pytest.fixture
def dynamodb(aws_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=aws_endpoint)


@pytest.fixture
def stream(kinesis: Any) -> Iterator[str]:
    name = _name("internals")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    yield name
    kinesis.delete_stream(StreamName=name)


def _table(dynamodb: Any, sort_key: bool = True) -> str:
    name = _name("internals")
    keys = [{"AttributeName": "device_id", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "device_id", "AttributeType": "S"}]
    if sort_key:
        keys.append({"AttributeName": "timestamp", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "timestamp", "AttributeType": "N"})
    dynamodb.create_table(
        TableName=name,
        KeySchema=keys,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _backend() -> Any:
    return moto_internals.dynamodb_backend(ACCOUNT, REGION)


# --- the package ---------------------------------------------------------------------


def test_moto_version_is_the_installed_distribution():
    assert moto_internals.version() == importlib.metadata.version("moto")


def test_moto_core_default_account_id():
    assert moto_internals.default_account_id() == ACCOUNT


def test_moto_core_utils_utcnow_is_naive_utc():
    now = moto_internals.utcnow()
    assert now.tzinfo is None
    assert abs(now.replace(tzinfo=dt.UTC).timestamp() - time.time()) < 5


def test_moto_models_keep_added_attributes_in_their_dict(dynamodb):
    table = moto_internals.dynamodb_table(_backend(), _table(dynamodb))
    moto_internals.private_state(table)["_local_cloud_probe"] = 1
    assert vars(table)["_local_cloud_probe"] == 1


# --- the server ----------------------------------------------------------------------


def test_moto_server_domain_dispatcher_application_routes_hosts():
    app = moto_internals.server_application()
    assert app.get_backend_for_host("dynamodb.ap-southeast-2.amazonaws.com") is not None
    assert callable(app)
    assert moto_internals.server_request_handler().__name__ == "MotoRequestHandler"


# --- Kinesis -------------------------------------------------------------------------


def test_kinesis_backends_stream_shards_and_records_by_sequence_number(kinesis, stream):
    numbers = [
        int(kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")["SequenceNumber"])
        for _ in range(3)
    ]
    moto_stream = moto_internals.kinesis_stream(REGION, ACCOUNT, stream)
    assert moto_internals.kinesis_stream(REGION, ACCOUNT, "no-such-stream") is None
    (shard,) = moto_internals.stream_shards(moto_stream).values()
    records = moto_internals.shard_records(shard)
    assert list(records) == numbers  # ints, numbered upwards, in insertion order
    assert next(reversed(records)) == numbers[-1]


def test_kinesis_record_data_is_the_payload_bytes(kinesis, stream):
    payload = b'{"device_id": "sensor-1", "temperature": 21.5}'
    kinesis.put_record(StreamName=stream, Data=payload, PartitionKey="sensor-1")
    (shard,) = moto_internals.stream_shards(
        moto_internals.kinesis_stream(REGION, ACCOUNT, stream)
    ).values()
    (record,) = moto_internals.shard_records(shard).values()
    assert moto_internals.record_data(record) == payload
    assert moto_internals.record_partition_key(record) == "sensor-1"


def test_kinesis_record_created_at_is_the_arrival_time(kinesis, stream):
    before = time.time()
    kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")
    after = time.time()
    (shard,) = moto_internals.stream_shards(
        moto_internals.kinesis_stream(REGION, ACCOUNT, stream)
    ).values()
    (record,) = moto_internals.shard_records(shard).values()
    arrival = moto_internals.record_arrival(record)
    assert before - 1 <= arrival <= after + 1
    # The same moment as Kinesis reports it over the API.
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (answered,) = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert answered["ApproximateArrivalTimestamp"].timestamp() == pytest.approx(arrival, abs=1e-3)


def test_kinesis_backend_put_record_takes_bytes_and_numbers_the_record(kinesis, stream):
    payload = b"\x00\xffnot json"
    sequence = moto_internals.put_kinesis_record(REGION, ACCOUNT, stream, "k", payload)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (record,) = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert record["Data"] == payload
    assert record["SequenceNumber"] == sequence


def test_kinesis_backend_put_record_errors_are_json_rest_errors(aws_endpoint):
    with pytest.raises(moto_internals.ApiError) as raised:
        moto_internals.put_kinesis_record(REGION, ACCOUNT, "no-such-stream", "k", b"x")
    assert raised.value.status == 400
    assert raised.value.code == "ResourceNotFoundException"
    assert "no-such-stream" in raised.value.message


def test_kinesis_models_shard_and_record_classes(kinesis, stream):
    kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")
    shard_class, record_class = moto_internals.kinesis_record_classes()
    (shard,) = moto_internals.stream_shards(
        moto_internals.kinesis_stream(REGION, ACCOUNT, stream)
    ).values()
    assert type(shard) is shard_class
    assert all(type(r) is record_class for r in moto_internals.shard_records(shard).values())


# --- DynamoDB streams ----------------------------------------------------------------


def _streamed_table(dynamodb: Any, view_type: str = "NEW_AND_OLD_IMAGES") -> tuple[str, str]:
    """A table with a stream (partition key `id`, a number): its name and stream ARN."""
    name = _name("internals")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
    )
    return name, dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def test_dynamodb_table_stream_shard_id_starting_sequence_number_and_items(aws_endpoint, dynamodb):
    name, arn = _streamed_table(dynamodb)
    for i in range(3):
        dynamodb.put_item(TableName=name, Item={"id": {"N": str(i)}})
    shard = moto_internals.table_stream_shard(REGION, ACCOUNT, name)
    described = boto3.client("dynamodbstreams", endpoint_url=aws_endpoint).describe_stream(
        StreamArn=arn
    )["StreamDescription"]
    (shard_json,) = described["Shards"]
    assert moto_internals.stream_shard_id(shard) == shard_json["ShardId"]
    first = moto_internals.stream_shard_first_sequence(shard)
    assert first == int(shard_json["SequenceNumberRange"]["StartingSequenceNumber"])
    records = moto_internals.stream_shard_records(shard)
    assert isinstance(records, list) and len(records) == 3
    numbers = [moto_internals.stream_record_body(r)["dynamodb"]["SequenceNumber"] for r in records]
    assert numbers == [str(first + i) for i in range(3)]  # numbered by position
    # None for a table elsewhere, and for a table without a stream.
    assert moto_internals.table_stream_shard(REGION, ACCOUNT, "no-such-table") is None
    assert moto_internals.table_stream_shard(REGION, ACCOUNT, _table(dynamodb)) is None


def test_dynamodb_stream_record_body_and_approximate_creation_date_time(aws_endpoint, dynamodb):
    name, arn = _streamed_table(dynamodb)
    before = time.time()
    dynamodb.put_item(TableName=name, Item={"id": {"N": "1"}, "raw": {"B": b"\x00\xff"}})
    dynamodb.put_item(TableName=name, Item={"id": {"N": "1"}, "note": {"S": "again"}})
    dynamodb.delete_item(TableName=name, Key={"id": {"N": "1"}})
    after = time.time()
    shard = moto_internals.table_stream_shard(REGION, ACCOUNT, name)
    records = moto_internals.stream_shard_records(shard)
    bodies = [moto_internals.stream_record_body(r) for r in records]
    assert [b["eventName"] for b in bodies] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(isinstance(b["eventID"], str) and b["eventID"] for b in bodies)
    insert, modify, remove = (b["dynamodb"] for b in bodies)
    assert insert["Keys"] == {"id": {"N": "1"}}
    assert insert["NewImage"]["raw"] == {"B": b"\x00\xff"}  # binary content as bytes
    assert modify["OldImage"]["raw"] == {"B": b"\x00\xff"}
    assert modify["NewImage"] == {"id": {"N": "1"}, "note": {"S": "again"}}
    assert set(remove) >= {"Keys", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"}
    assert "NewImage" not in remove and isinstance(remove["SizeBytes"], int)
    assert remove["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    arrivals = [moto_internals.stream_record_arrival(r) for r in records]
    assert before - 1 <= arrivals[0] <= arrivals[-1] <= after + 1
    # The same moment as DynamoDB Streams reports it over the API (to the millisecond).
    streams = boto3.client("dynamodbstreams", endpoint_url=aws_endpoint)
    iterator = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=moto_internals.stream_shard_id(shard),
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    answered = streams.get_records(ShardIterator=iterator)["Records"]
    created = [r["dynamodb"]["ApproximateCreationDateTime"].timestamp() for r in answered]
    assert created == pytest.approx(arrivals, abs=1e-3)


# --- DynamoDB values and items -------------------------------------------------------


@pytest.mark.parametrize("number", ["1", "100", "1.00", "-12345.678", "0.000123", "1E2"])
def test_dynamodb_utilities_number_size_is_what_moto_counts(number):
    value = moto_internals.value_from_json({"N": number})
    assert moto_internals.number_size(number) == value.size()


def test_dynamodb_utilities_bytesize_counts_utf8_bytes():
    assert moto_internals.text_size("abc") == 3
    assert moto_internals.text_size("°C") == 3


def test_dynamodb_exceptions_item_size_too_large_is_the_api_error(dynamodb):
    error = moto_internals.item_size_error()
    assert type(error).__name__ == "ItemSizeTooLarge"
    # The local cloud's limit is the one moto enforces: just under it is stored, over it
    # is answered with moto's error.
    name = _table(dynamodb, sort_key=False)
    room = moto_internals.ITEM_MAX_BYTES - len("device_id") - len("d") - len("big") - 10
    dynamodb.put_item(TableName=name, Item={"device_id": {"S": "d"}, "big": {"S": "x" * room}})
    with pytest.raises(ClientError, match="Item size has exceeded"):
        dynamodb.put_item(
            TableName=name, Item={"device_id": {"S": "d"}, "big": {"S": "x" * (room + 20)}}
        )


def test_dynamo_type_type_and_value():
    value = moto_internals.value_from_json({"M": {"a": {"N": "1"}, "b": {"L": [{"S": "x"}]}}})
    kind, members = moto_internals.value_parts(value)
    assert kind == "M"
    assert moto_internals.value_parts(members["a"]) == ("N", "1")
    assert moto_internals.value_parts(moto_internals.value_parts(members["b"])[1][0]) == (
        "S",
        "x",
    )
    made = moto_internals.new_value("S", "sensor-1")
    assert made == moto_internals.value_from_json({"S": "sensor-1"})
    assert hash(made) == hash(moto_internals.value_from_json({"S": "sensor-1"}))


def test_dynamodb_item_hash_key_range_key_and_attrs(dynamodb):
    name = _table(dynamodb)
    item = {"device_id": {"S": "sensor-1"}, "timestamp": {"N": "1700"}, "t": {"N": "21.5"}}
    dynamodb.put_item(TableName=name, Item=item)
    table = moto_internals.dynamodb_table(_backend(), name)
    (stored,) = moto_internals.table_items(table)
    hash_key, range_key = moto_internals.item_keys(stored)
    assert moto_internals.value_parts(hash_key) == ("S", "sensor-1")
    assert moto_internals.value_parts(range_key) == ("N", "1700")
    attributes = moto_internals.item_attributes(stored)
    assert list(attributes) == ["device_id", "timestamp", "t"]
    assert moto_internals.value_parts(attributes["t"]) == ("N", "21.5")
    item_class, value_class = moto_internals.dynamodb_classes()
    assert type(stored) is item_class and type(hash_key) is value_class
    copy = moto_internals.new_item(item_class, hash_key, range_key, dict(attributes))
    assert copy.to_json() == stored.to_json()


# --- DynamoDB tables and backends ----------------------------------------------------


def test_dynamodb_table_key_attrs_arn_and_name(dynamodb):
    name = _table(dynamodb)
    table = moto_internals.dynamodb_table(_backend(), name)
    assert moto_internals.table_key_names(table) == ("device_id", "timestamp")
    assert moto_internals.table_name(table) == name
    described = dynamodb.describe_table(TableName=name)["Table"]
    assert moto_internals.table_arn(table) == described["TableArn"]
    no_sort = moto_internals.dynamodb_table(_backend(), _table(dynamodb, sort_key=False))
    assert moto_internals.table_key_names(no_sort) == ("device_id", None)


@pytest.mark.parametrize("sort_key", [True, False])
def test_dynamodb_table_items_by_hash_then_range_key(dynamodb, sort_key):
    name = _table(dynamodb, sort_key=sort_key)
    devices = ["a", "b"] if not sort_key else ["a", "a", "b"]
    for n, device in enumerate(devices):
        item = {"device_id": {"S": device}}
        if sort_key:
            item["timestamp"] = {"N": str(n)}
        dynamodb.put_item(TableName=name, Item=item)
    table = moto_internals.dynamodb_table(_backend(), name)
    assert len(moto_internals.table_items(table)) == len(devices)
    hash_value = moto_internals.new_value("S", "a")
    range_value = moto_internals.new_value("N", "1") if sort_key else None
    found = moto_internals.stored_item(table, hash_value, range_value)
    assert found is not None
    assert moto_internals.value_parts(moto_internals.item_keys(found)[0]) == ("S", "a")
    missing = moto_internals.new_value("S", "zzz")
    assert moto_internals.stored_item(table, missing, range_value) is None


def test_dynamodb_table_query_index_name_parameter_and_items_by_partition(dynamodb):
    name = _table(dynamodb)
    for device, timestamp in [("a", 1), ("a", 2), ("b", 1)]:
        dynamodb.put_item(
            TableName=name,
            Item={"device_id": {"S": device}, "timestamp": {"N": str(timestamp)}},
        )
    table = moto_internals.dynamodb_table(_backend(), name)
    # The eighth parameter of moto's Table.query, by position or by name.
    query = moto_patches.original("Table.query")
    parameters = list(inspect.signature(query).parameters)
    assert parameters[:2] == ["self", "hash_key"] and parameters[8] == "index_name"
    assert moto_internals.query_index_name((None,) * 6 + ("by_day",), {}) == "by_day"
    assert moto_internals.query_index_name((None,) * 6, {"index_name": "by_day"}) == "by_day"
    assert moto_internals.query_index_name((None,) * 6, {}) is None
    # One partition's items, the table left whole.
    hash_value = moto_internals.new_value("S", "a")
    partition = moto_internals.table_partition(table, hash_value)
    assert len(moto_internals.table_items(partition)) == 2
    assert len(moto_internals.table_items(table)) == 3
    missing = moto_internals.table_partition(table, moto_internals.new_value("S", "zzz"))
    assert moto_internals.table_items(missing) == []
    assert len(moto_internals.table_items(table)) == 3


def test_dynamodb_table_continuous_backups_point_in_time_recovery(dynamodb):
    name = _table(dynamodb)
    table = moto_internals.dynamodb_table(_backend(), name)
    assert moto_internals.pitr_description(table)["PointInTimeRecoveryStatus"] == "DISABLED"
    dynamodb.update_continuous_backups(
        TableName=name,
        PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True,
            "RecoveryPeriodInDays": 7,
        },
    )
    description = moto_internals.pitr_description(table)
    assert description["PointInTimeRecoveryStatus"] == "ENABLED"
    assert isinstance(description["EarliestRestorableDateTime"], (dt.datetime, int, float))


def test_dynamodb_backend_tables_get_item_and_put_item(dynamodb):
    name = _table(dynamodb)
    backend = _backend()
    moto_internals.dynamodb_put_item(
        backend, name, {"device_id": {"S": "sensor-9"}, "timestamp": {"N": "5"}}
    )
    assert name in [moto_internals.table_name(t) for t in moto_internals.dynamodb_tables(backend)]
    table = moto_internals.dynamodb_table(backend, name)
    key = {"device_id": {"S": "sensor-9"}, "timestamp": {"N": "5"}}
    assert moto_internals.item_at_key(backend, table, key) is not None
    assert dynamodb.get_item(TableName=name, Key=key)["Item"] == key
    assert moto_internals.item_at_key(backend, table, {**key, "timestamp": {"N": "6"}}) is None
    assert moto_internals.backend_location(backend) == (ACCOUNT, REGION, "aws")
    assert isinstance(moto_internals.table_exports(backend), dict)


def test_dynamodb_handler_body_and_backend_reach_the_replaced_export_api(dynamodb):
    """The replaced export handlers read moto's request handler (`handler_request`) and
    answer with moto's errors (`client_error`) and results (`action_result`)."""
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/none/export/01-ab"
    with pytest.raises(ClientError) as raised:
        dynamodb.describe_export(ExportArn=arn)
    assert raised.value.response["Error"]["Code"] == "ExportNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "ExportSummaries" in dynamodb.list_exports()


def test_core_action_result_and_json_rest_error():
    error: Any = moto_internals.client_error("com.example#Nope", "no")
    assert (error.error_type, error.message, error.code) == ("com.example#Nope", "no", 400)
    assert type(moto_internals.action_result({"A": 1})).__name__ == "ActionResult"


# --- S3 ------------------------------------------------------------------------------


def test_s3_backends_buckets_and_put_object(aws_endpoint):
    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    bucket = _name("internals")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    backend = moto_internals.s3_backend(ACCOUNT, "aws")
    assert moto_internals.s3_bucket_exists(backend, bucket)
    assert not moto_internals.s3_bucket_exists(backend, bucket + "-none")
    etag = moto_internals.s3_put_object(backend, bucket, "a/b.json", b"{}")
    head = s3.head_object(Bucket=bucket, Key="a/b.json")
    assert head["ETag"].strip('"') == etag
    assert s3.get_object(Bucket=bucket, Key="a/b.json")["Body"].read() == b"{}"


# --- Glue ----------------------------------------------------------------------------


@pytest.fixture
def crawler(aws_endpoint: str) -> Iterator[tuple[Any, str]]:
    glue = boto3.client("glue", endpoint_url=aws_endpoint)
    name = _name("internals")
    glue.create_database(DatabaseInput={"Name": name})
    glue.create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/crawler",
        DatabaseName=name,
        Targets={"S3Targets": [{"Path": "s3://nowhere/lake/", "Exclusions": ["**.md5"]}]},
        TablePrefix="lake_",
    )
    yield glue, name
    glue.delete_crawler(Name=name)


def _moto_crawler(name: str) -> Any:
    for _service, account, region, backend in moto_internals.backends_in_use():
        if type(backend).__name__ == "GlueBackend" and (account, region) == (ACCOUNT, REGION):
            return backend.get_crawler(name)
    raise AssertionError("no Glue backend in use")


def test_glue_crawler_name_and_as_dict(crawler):
    _glue, name = crawler
    moto_crawler = _moto_crawler(name)
    assert moto_internals.crawler_name(moto_crawler) == name
    description = moto_internals.crawler_description(moto_crawler)
    assert description["Targets"]["S3Targets"][0]["Path"] == "s3://nowhere/lake/"
    assert description["TablePrefix"] == "lake_"


def test_glue_crawl_transitions_status_and_end_time(crawler):
    """A started crawl stays RUNNING once pinned, and ends as `finish_crawl` says."""
    glue, name = crawler
    with moto_patches.without("GlueBackend.start_crawler"):
        glue.start_crawler(Name=name)
    moto_crawler = _moto_crawler(name)
    crawl = moto_internals.current_crawl(moto_crawler)
    moto_internals.pin_crawl_running(crawl)
    assert glue.get_crawler(Name=name)["Crawler"]["State"] == "RUNNING"
    moto_internals.finish_crawl(moto_crawler, crawl, "bad file", elapsed_ms=1234)
    answered = glue.get_crawler(Name=name)["Crawler"]
    assert answered["State"] == "READY"
    assert answered["LastCrawl"]["Status"] == "FAILED"
    assert answered["LastCrawl"]["ErrorMessage"] == "bad file"
    (listed,) = glue.list_crawls(CrawlerName=name)["Crawls"]
    assert listed["State"] == "FAILED"
    assert listed["EndTime"] is not None


# --- every backend ------------------------------------------------------------------


def test_backend_dict_instances_and_get_backend(dynamodb):
    name = _table(dynamodb)
    found = {
        (service, account, region): backend
        for service, account, region, backend in moto_internals.backends_in_use()
    }
    backend = found[("dynamodb", ACCOUNT, REGION)]
    assert backend is _backend()
    moto_internals.put_backend("dynamodb", ACCOUNT, REGION, backend)
    assert moto_internals.dynamodb_table(_backend(), name) is not None


# --- CloudWatch ------------------------------------------------------------------------


def test_cloudwatch_metric_aggregated_datum_answers_statistics(aws_endpoint):
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint)
    stream = _name("metrics")
    minute = moto_internals.utcnow().replace(second=0, microsecond=0)
    datum = moto_internals.cloudwatch_minute_datum(
        ACCOUNT, REGION, "IncomingRecords", "Count", stream, 3.0, minute
    )
    datum.sample_count, datum.sum = 2.0, 5.0
    assert datum in moto_internals.cloudwatch_backend(ACCOUNT, REGION).metric_data
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/Kinesis",
        MetricName="IncomingRecords",
        Dimensions=[{"Name": "StreamName", "Value": stream}],
        StartTime=minute - dt.timedelta(minutes=1),
        EndTime=minute + dt.timedelta(minutes=2),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )
    (point,) = answer["Datapoints"]
    assert (point["Sum"], point["SampleCount"]) == (5.0, 2.0)


# --- what moto_patches patches --------------------------------------------------------


def test_events_rule_arn_event_pattern_targets_and_a_copy_with_fewer(aws_endpoint):
    events = boto3.client("events", endpoint_url=aws_endpoint)
    bus = _name("internals")
    events.create_event_bus(Name=bus)
    arn = events.put_rule(Name="r", EventBusName=bus, EventPattern='{"source": ["tests"]}')[
        "RuleArn"
    ]
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    events.put_targets(
        Rule="r",
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": queue}, {"Id": "t", "Arn": topic}],
    )
    from moto.events.models import events_backends

    rule = events_backends[ACCOUNT][REGION].describe_rule("r", bus)
    assert moto_internals.rule_arn(rule) == arn
    assert [t["Arn"] for t in moto_internals.rule_targets(rule)] == [queue, topic]
    event = {"source": "tests", "detail-type": "x", "detail": {}}
    assert moto_internals.rule_matches(rule, event)
    assert not moto_internals.rule_matches(rule, {**event, "source": "elsewhere"})
    fewer = moto_internals.rule_with_targets(rule, [{"Id": "q", "Arn": queue}])
    assert [t["Id"] for t in moto_internals.rule_targets(fewer)] == ["q"]
    assert len(moto_internals.rule_targets(rule)) == 2


def test_events_event_pattern_load_and_matches_event():
    matches = moto_internals.event_pattern_matcher(
        '{"dynamodb": {"NewImage": {"outbox": {"S": [{"exists": true}]}}}, "eventName": ["INSERT"]}'
    )
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"outbox": {"S": "[]"}}}}
    assert matches(record)
    assert not matches({**record, "eventName": "REMOVE"})
    assert not matches({"eventName": "INSERT", "dynamodb": {"NewImage": {"id": {"N": "1"}}}})
    for invalid in ('{"dynamodb": "INSERT"}', "not json", "[1]", '{"eventName": []}'):
        with pytest.raises(ValueError, match="invalid event pattern"):
            moto_internals.event_pattern_matcher(invalid)


def test_every_patched_method_exists_in_moto():
    targets = moto_internals.patch_targets()
    for field in vars(targets):
        assert getattr(targets, field) is not None, field
    for patch in moto_patches._patches():
        assert callable(moto_patches.original(patch.key)), patch.key


# --- ECS and RDS -------------------------------------------------------------------------


def test_ecs_backends_register_task_definition(aws_endpoint):
    ecs = boto3.client("ecs", endpoint_url=aws_endpoint)
    family = _name("internals")
    registered = moto_internals.ecs_backend(ACCOUNT, REGION).register_task_definition(
        family=family,
        container_definitions=moto_internals.camel_case_keys(
            [
                {
                    "Name": "run",
                    "Image": "x",
                    "Memory": 512,
                    "PortMappings": [{"ContainerPort": 3000}],
                }
            ]
        ),
        volumes=None,
        tags=None,
    )
    described = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert described["taskDefinitionArn"] == registered.arn
    assert described["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 3000


def test_rds_master_user_secret_is_a_secrets_manager_secret(aws_endpoint):
    rds = boto3.client("rds", endpoint_url=aws_endpoint)
    name = _name("internals")
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="dagster",
        MasterUserPassword="not-used-here-1",
        AllocatedStorage=20,
    )
    database = next(
        backend.databases[name]
        for service, account, region, backend in moto_internals.backends_in_use()
        if (service, account, region) == ("rds", ACCOUNT, REGION)
    )
    secret = moto_internals.rds_managed_secret(database, None)
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint)
    assert secret.secret_arn.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:")
    assert secrets.describe_secret(SecretId=secret.secret_arn)["ARN"] == secret.secret_arn


def test_cloudwatch_alarm_dimensions_statistic_period_unit_and_action_result_result(
    aws_endpoint,
):
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint)
    name = _name("internals-alarm")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="IteratorAge",
        Namespace="AWS/Lambda",
        Dimensions=[{"Name": "FunctionName", "Value": name}],
        Statistic="Maximum",
        Period=60,
        Unit="Milliseconds",
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    try:
        backend = moto_internals.cloudwatch_backend(ACCOUNT, REGION)
        (alarm,) = [a for a in backend.describe_alarms() if a.name == name]
        assert moto_internals.alarm_metric(alarm) == {
            "Dimensions": frozenset({("FunctionName", name)}),
            "Statistic": "Maximum",
            "ExtendedStatistic": None,
            "Period": 60,
            "Unit": "Milliseconds",
        }
        from moto.core.responses import ActionResult

        assert moto_internals.action_result_body(ActionResult({"MetricAlarms": []})) == {
            "MetricAlarms": []
        }
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])
