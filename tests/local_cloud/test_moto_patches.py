"""The local cloud's changes to moto: the same answers as moto's own, and moto restored after."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import uuid
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.kinesis.models import Shard
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_cloud import defaults, moto_patches
from tests.support.readings_table import create_readings_table

DATA = b'{"device_id": "sensor-0001", "timestamp": 1}'


@pytest.mark.parametrize("records", [0, 1, 2, 500])
def test_lookups_agree_with_moto_on_a_filled_shard(records):
    """GIVEN a moto shard holding some records
    WHEN its lowest and highest sequence numbers are looked up both ways
    THEN the constant-time lookups return what moto's own return (0 for an empty shard)."""
    shard = Shard(0, 0, 2**128 - 1)
    for _ in range(records):
        shard.put_record("sensor-0001", DATA, None)
    assert moto_patches.get_max_sequence_number(shard) == (
        moto_patches.original("Shard.get_max_sequence_number")(shard)
    )
    assert moto_patches.get_min_sequence_number(shard) == (
        moto_patches.original("Shard.get_min_sequence_number")(shard)
    )
    assert moto_patches.get_max_sequence_number(shard) == records


def test_put_record_over_the_api_numbers_records_in_order(aws_endpoint):
    """GIVEN a one-shard stream in the running emulator (which uses the new lookups)
    WHEN records are put one by one over the Kinesis API
    THEN each gets the next sequence number and the shard reports its range."""
    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    name = f"seq-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    numbers = [
        int(kinesis.put_record(StreamName=name, Data=b"{}", PartitionKey="k")["SequenceNumber"])
        for _ in range(20)
    ]
    assert numbers == list(range(numbers[0], numbers[0] + 20))
    shard = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"][0]
    assert int(shard["SequenceNumberRange"]["StartingSequenceNumber"]) == numbers[0]


@pytest.mark.parametrize(
    "host",
    [
        "dynamodb.ap-southeast-2.amazonaws.com",
        "kinesis.ap-southeast-2.amazonaws.com",
        "s3.amazonaws.com",
        "glue.ap-southeast-2.amazonaws.com",
        "moto_api",
        None,
    ],
)
def test_remembered_routing_agrees_with_moto(host):
    """GIVEN moto's dispatcher
    WHEN a host is routed twice with the remembered lookup
    THEN both answers are the one moto's own routing gives."""
    app = DomainDispatcherApplication(create_backend_app)
    expected = moto_patches.original("DomainDispatcherApplication.get_backend_for_host")(app, host)
    assert moto_patches.get_backend_for_host(app, host) == expected
    assert moto_patches.get_backend_for_host(app, host) == expected


def test_unknown_host_is_not_remembered(capsys):
    """GIVEN a host no moto service answers
    WHEN it is routed twice
    THEN moto reports it both times, as it does without the cache."""
    app = DomainDispatcherApplication(create_backend_app)
    for _ in range(2):
        assert moto_patches.get_backend_for_host(app, "nothing.example.amazonaws.com") is None
    assert capsys.readouterr().out.count("Unable to find appropriate backend") == 2


def test_requests_to_several_services_reach_each_service(aws_endpoint):
    """GIVEN the running emulator (which remembers routes)
    WHEN one client after another calls different services on the same endpoint
    THEN each call is answered by its own service."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    queue = sqs.create_queue(QueueName=f"route-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(2):
        assert "TableNames" in dynamodb.list_tables()
        assert "StreamNames" in kinesis.list_streams()
        assert queue in sqs.list_queues()["QueueUrls"]


def test_the_last_uninstall_gives_moto_back_its_own_methods(aws_endpoint):
    """GIVEN the session's emulator (patches installed) and one more installer
    WHEN that installer uninstalls THEN the patches stay for the emulator,
    and WHEN the emulator's share is undone too THEN moto's own methods are back, until the
    emulator's share is installed again."""
    moto_patches.install()
    moto_patches.uninstall()
    assert Shard.get_max_sequence_number is moto_patches.get_max_sequence_number
    moto_patches.uninstall()  # the emulator's share
    try:
        assert not moto_patches.is_installed()
        assert Shard.get_max_sequence_number is moto_patches.original(
            "Shard.get_max_sequence_number"
        )
        assert DomainDispatcherApplication.get_backend_for_host is moto_patches.original(
            "DomainDispatcherApplication.get_backend_for_host"
        )
    finally:
        moto_patches.install()
    assert Shard.get_max_sequence_number is moto_patches.get_max_sequence_number


def _dynamodb_request(body: dict) -> object:
    from moto.core.request import Request
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(
        method="POST",
        data=json.dumps(body).encode(),
        headers=[
            ("X-Amz-Target", "DynamoDB_20120810.BatchWriteItem"),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
    ).get_environ()
    return Request(environ)


READING_ITEM = {
    "device_id": {"S": "sensor-0001"},
    "timestamp": {"N": "1700000000"},
    "temperature": {"N": "22.5"},
    "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}]},
    "extra": {"M": {"pressure": {"N": "1012"}, "ok": {"BOOL": True}, "none": {"NULL": True}}},
    "tags": {"SS": ["a", "b"]},
}


@pytest.mark.parametrize(
    "item",
    [READING_ITEM, {**READING_ITEM, "raw": {"B": base64.b64encode(b"\x00\x01").decode()}}],
    ids=["reading", "with a binary attribute"],
)
def test_batch_write_parameters_are_what_moto_parses(item):
    """GIVEN a BatchWriteItem request (a reading with lists, maps, sets; or a binary attribute)
    WHEN its parameters are parsed by the local cloud's shortcut and by moto's own parser
    THEN both give the same parameters."""
    from moto.dynamodb.responses import DynamoHandler

    body = {"RequestItems": {"t": [{"PutRequest": {"Item": item}}]}}
    parsed = []
    for patched in (False, True):
        handler = DynamoHandler()
        request = _dynamodb_request(body)
        with contextlib.ExitStack() as stack:
            if not patched:
                stack.enter_context(moto_patches.without("DynamoHandler.parse_parameters"))
            else:
                moto_patches.install()
                stack.callback(moto_patches.uninstall)
            handler.setup_class(request, "http://localhost/", request.headers)
        parsed.append(handler.params)
    assert parsed[0] == parsed[1]


def test_item_size_is_checked_once_with_moto_s_limit_and_error():
    """GIVEN items of many attributes, one just under moto's size limit and one over it
    WHEN they are built with the local cloud's `Item` and with moto's own
    THEN both build the same item under the limit, and both refuse the one over it."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    key = DynamoType({"S": "sensor-0001"})
    under = {f"a{i:03d}": {"S": "x" * 3990} for i in range(100)}
    over = {**under, "last": {"S": "x" * 10_000}}
    own = moto_patches.original("Item.__init__")
    for attrs in (under, over):
        results = []
        for init in (own, moto_patches.dynamodb_item_init):
            item = Item.__new__(Item)
            try:
                init(item, key, None, attrs)
                results.append(item.to_json())
            except ItemSizeTooLarge:
                results.append("too large")
        assert results[0] == results[1]
    assert results[0] == "too large"


def test_a_known_account_is_answered_as_moto_answers_it():
    """GIVEN a moto service's backends that no account has used yet
    WHEN an account is looked up with the local cloud's lookup, twice, and after moto's
    reset once more
    THEN it gets the backends moto's own lookup makes (the same ones both times), and the
    service is registered as in use each time, as moto's own lookup leaves it."""
    from moto.core.base_backend import BackendDict
    from moto.sqs.models import SQSBackend

    backends = BackendDict(SQSBackend, "sqs")
    try:
        first = moto_patches.backend_dict_getitem(backends, "111122223333")
        assert backends in BackendDict._instances
        assert moto_patches.backend_dict_getitem(backends, "111122223333") is first
        assert first["eu-west-1"].account_id == "111122223333"
        # moto's reset forgets the accounts and the registrations together.
        backends.clear()
        BackendDict._instances.remove(backends)
        again = moto_patches.backend_dict_getitem(backends, "111122223333")
        assert again is not first
        assert backends in BackendDict._instances
    finally:
        if backends in BackendDict._instances:
            BackendDict._instances.remove(backends)


def _kinesis_statistics(aws_endpoint: str, stream: str, start: float) -> dict[str, list]:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint)
    statistics = {}
    for metric in ("IncomingBytes", "IncomingRecords"):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Kinesis",
            MetricName=metric,
            Dimensions=[{"Name": "StreamName", "Value": stream}],
            StartTime=start - 120,
            EndTime=start + 240,
            Period=60,
            Statistics=["Sum", "SampleCount", "Minimum", "Maximum", "Average"],
        )["Datapoints"]
        statistics[metric] = sorted(points, key=lambda p: p["Timestamp"])
    return statistics


def _put_in_two_minutes(kinesis, stream: str, start: float) -> None:
    import time_machine

    with time_machine.travel(start, tick=False):
        kinesis.put_record(StreamName=stream, Data=b"x" * 10, PartitionKey="a")
        kinesis.put_record(StreamName=stream, Data=b"y" * 30, PartitionKey="bb")
        kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": b"z" * 5, "PartitionKey": "c"}, {"Data": b"w", "PartitionKey": "d"}],
        )
    with time_machine.travel(start + 60, tick=False):
        kinesis.put_record(StreamName=stream, Data=b"v" * 7, PartitionKey="e")


def test_stream_metrics_answer_what_moto_s_datapoints_answer(aws_endpoint):
    """GIVEN puts to a stream spread over two minutes (PutRecord and PutRecords), made once
    with moto's own datapoint per put and once with the local cloud's statistic sets
    WHEN GetMetricStatistics asks for each minute's Sum, SampleCount, Minimum, Maximum and
    Average of IncomingBytes and IncomingRecords
    THEN both answer the same statistics, stamped at the start of each minute as Kinesis's
    once-a-minute metrics are, and the local cloud keeps one datum per metric and minute."""
    from moto.cloudwatch.models import cloudwatch_backends

    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    start = 1_899_999_960.0 + 15  # 15 s into a minute
    answers = []
    for own in (True, False):
        stream = f"metrics-{uuid.uuid4().hex[:8]}"
        kinesis.create_stream(StreamName=stream, ShardCount=1)
        keys = ("KinesisBackend._send_stream_metrics",) if own else ()
        with moto_patches.without(*keys):
            _put_in_two_minutes(kinesis, stream, start)
        answers.append((stream, _kinesis_statistics(aws_endpoint, stream, start)))
    (_, moto_s), (stream, local) = answers
    values = ("Sum", "SampleCount", "Minimum", "Maximum", "Average")
    for metric in ("IncomingBytes", "IncomingRecords"):
        assert [{k: p[k] for k in values} for p in local[metric]] == [
            {k: p[k] for k in values} for p in moto_s[metric]
        ]
        assert [p["Timestamp"].timestamp() for p in local[metric]] == [start - 15, start + 45]
    assert local["IncomingRecords"][0]["Sum"] == 4
    assert local["IncomingBytes"][0]["Sum"] == 10 + 1 + 30 + 2 + 5 + 1 + 1 + 1
    backend = cloudwatch_backends["123456789012"][defaults.REGION]
    kept = [
        d
        for d in backend.metric_data
        if d.namespace == "AWS/Kinesis" and any(dim.value == stream for dim in d.dimensions)
    ]
    assert len(kept) == 4  # two metrics, two minutes


_TEXT = st.text(max_size=12)
_NUMBER = st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,4})?", fullmatch=True)
_SCALARS = st.one_of(
    st.builds(lambda v: {"S": v}, _TEXT),
    st.builds(lambda v: {"N": v}, _NUMBER),
    st.builds(lambda v: {"B": v}, st.binary(max_size=8)),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda v: {"SS": v}, st.lists(_TEXT, min_size=1, max_size=4, unique=True)),
    st.builds(lambda v: {"NS": v}, st.lists(_NUMBER, min_size=1, max_size=4, unique=True)),
    st.builds(lambda v: {"BS": v}, st.lists(st.binary(max_size=4), min_size=1, max_size=3)),
)
_ATTRIBUTES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=4)),
        st.builds(lambda v: {"M": v}, st.dictionaries(_TEXT, inner, max_size=4)),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_ATTRIBUTES)
def test_attribute_sizes_are_moto_s(attribute):
    """GIVEN any DynamoDB attribute value (strings of any script, numbers, binary, booleans,
    null, sets, and lists and maps nesting them)
    WHEN it is sized by the local cloud's item size check and by moto's `DynamoType.size`
    THEN both give the same number of bytes."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    value = DynamoType(attribute)
    assert moto_patches.attribute_size(value) == value.size()


@settings(max_examples=200, deadline=None)
@given(_ATTRIBUTES)
def test_dynamodb_values_are_built_as_moto_builds_them(attribute):
    """GIVEN any DynamoDB attribute value, nested lists and maps included
    WHEN moto's DynamoType is built from it with the local cloud's constructor and with
    moto's own (from the dict, and again from the built value)
    THEN both hold the same type and value, member by member, and the same JSON."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    own = moto_patches.original("DynamoType.__init__")
    theirs, ours = DynamoType.__new__(DynamoType), DynamoType.__new__(DynamoType)
    own(theirs, attribute)
    moto_patches.dynamo_type_init(ours, attribute)
    assert (ours.type, ours.to_json(), ours) == (theirs.type, theirs.to_json(), theirs)
    copied = DynamoType.__new__(DynamoType)
    moto_patches.dynamo_type_init(copied, theirs)
    assert (copied.type, copied.to_json()) == (theirs.type, theirs.to_json())


def test_an_empty_dynamodb_value_fails_as_in_moto():
    """GIVEN an attribute value with no type (`{}`)
    WHEN a DynamoType is built from it both ways
    THEN both refuse it with the same error."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    errors = []
    for init in (moto_patches.original("DynamoType.__init__"), moto_patches.dynamo_type_init):
        with pytest.raises(IndexError) as raised:
            init(DynamoType.__new__(DynamoType), {})
        errors.append(str(raised.value))
    assert errors[0] == errors[1]


def test_response_method_names_are_moto_s_and_made_once():
    """GIVEN moto's response classes for DynamoDB, S3 and Kinesis
    WHEN their method names are asked for twice
    THEN they are the names moto lists, and the second answer is the first one kept."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.kinesis.responses import KinesisResponse
    from moto.s3.responses import S3Response

    own = moto_patches.original("responses.method_names_from_class")
    for cls in (DynamoHandler, S3Response, KinesisResponse):
        first = moto_patches.method_names_from_class(cls)
        assert first == own(cls)
        assert moto_patches.method_names_from_class(cls) is first


def test_events_for_targets_moto_cannot_deliver_go_to_the_listeners(aws_endpoint):
    """GIVEN a rule with an SNS target and an SQS target
    WHEN an event matching it is put on the bus
    THEN PutEvents succeeds (moto alone fails the call on the SNS target), the SNS target
    and the event are handed to the listeners, and moto still delivers to the queue."""
    events = boto3.client("events", endpoint_url=aws_endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    name = f"bus-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    topic_arn = f"arn:aws:sns:{defaults.REGION}:123456789012:{name}"
    events.put_rule(Name="both", EventBusName=name, EventPattern='{"source": ["tests"]}')
    events.put_targets(
        Rule="both",
        EventBusName=name,
        Targets=[
            {"Id": "topic", "Arn": topic_arn, "Input": '"hello"'},
            {"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]},
        ],
    )
    handed: list[tuple[str, dict, dict]] = []
    moto_patches.on_event_target.append(lambda *args: handed.append(args))
    try:
        answer = events.put_events(
            Entries=[
                {"Source": "tests", "DetailType": "t", "Detail": '{"n": 1}', "EventBusName": name},
                {"Source": "other", "DetailType": "t", "Detail": '{"n": 2}', "EventBusName": name},
            ]
        )
    finally:
        moto_patches.on_event_target.pop()

    assert answer["FailedEntryCount"] == 0
    ((rule_arn, target, event),) = handed
    assert rule_arn.endswith(f"rule/{name}/both")
    assert (target["Arn"], target["Input"]) == (topic_arn, '"hello"')
    assert (event["source"], event["detail"]) == ("tests", {"n": 1})
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["detail"] == {"n": 1}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"ScanIndexForward": False, "Limit": 2},
        {"KeyConditionExpression": "#d = :d AND #t > :t", "Limit": 3},
        {"FilterExpression": "#t <> :t", "ScanIndexForward": False},
        {"ExclusiveStartKey": {"device_id": {"S": "d-2"}, "timestamp": {"N": "3"}}},
    ],
)
def test_queries_on_the_table_answer_what_moto_answers(aws_endpoint, query):
    """GIVEN a table of several devices' readings
    WHEN a device's readings are queried (order, limit, range condition, filter, start key)
    THEN the patched Query answers exactly what moto's own answers, and a device with no
    readings gets none."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    name = f"query-{uuid.uuid4().hex[:8]}"
    create_readings_table(dynamodb, name, pitr=False)
    for device in range(4):
        for second in range(6):
            dynamodb.put_item(
                TableName=name,
                Item={"device_id": {"S": f"d-{device}"}, "timestamp": {"N": str(second)}},
            )
    request = {
        "TableName": name,
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "device_id"},
        "ExpressionAttributeValues": {":d": {"S": "d-2"}},
        **query,
    }
    if "#t" in json.dumps(query):
        request["ExpressionAttributeNames"]["#t"] = "timestamp"
        request["ExpressionAttributeValues"][":t"] = {"N": "2"}
    patched = dynamodb.query(**request)
    with moto_patches.without("Table.query"):
        own = dynamodb.query(**request)
    for answer in (patched, own):
        answer.pop("ResponseMetadata")
    assert patched == own
    assert patched["Items"]
    missing = {**request, "ExpressionAttributeValues": {**request["ExpressionAttributeValues"]}}
    missing["ExpressionAttributeValues"][":d"] = {"S": "nobody"}
    assert dynamodb.query(**missing)["Items"] == []


def test_writes_to_a_mapped_table_keep_their_stream_records(aws_endpoint):
    """GIVEN a table whose stream is mapped to a function (which moto would run in Docker,
    on every write, emptying the stream when the run answers)
    WHEN items are written to it over the API, one with a binary attribute (on which moto's
    own delivery fails the write with HTTP 500)
    THEN every write succeeds, no function runs, and the stream keeps every record for the
    event source mapping runner."""
    from moto.awslambda.models import LambdaBackend

    assert LambdaBackend.send_dynamodb_items is moto_patches.send_dynamodb_items
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    lam = boto3.client("lambda", endpoint_url=aws_endpoint)
    name = f"mapped-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    stream_arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    role = boto3.client("iam", endpoint_url=aws_endpoint).create_role(
        RoleName=name, AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="nowhere.handler",
        Code={"ZipFile": _empty_zip()},
    )
    mapping = lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON"
    )["UUID"]
    try:
        dynamodb.put_item(TableName=name, Item={"id": {"N": "1"}, "raw": {"B": b"\x00"}})
        dynamodb.put_item(TableName=name, Item={"id": {"N": "2"}})
        dynamodb.delete_item(TableName=name, Key={"id": {"N": "1"}})
        streams = boto3.client("dynamodbstreams", endpoint_url=aws_endpoint)
        (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "REMOVE"]
        # moto's own delivery, for comparison: the write with a binary attribute fails.
        once = boto3.client(
            "dynamodb", endpoint_url=aws_endpoint, config=Config(retries={"total_max_attempts": 1})
        )
        with (
            moto_patches.without("LambdaBackend.send_dynamodb_items"),
            pytest.raises(ClientError) as raised,
        ):
            once.put_item(TableName=name, Item={"id": {"N": "3"}, "raw": {"B": b"\x00"}})
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    finally:
        lam.delete_event_source_mapping(UUID=mapping)
        lam.delete_function(FunctionName=name)
        dynamodb.delete_table(TableName=name)


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def test_alarms_for_a_metric_are_those_of_the_dimensions_asked_for(aws_endpoint):
    """GIVEN an IteratorAge alarm for each of two functions (as the streaming stack has)
    WHEN the alarms for one function's IteratorAge are asked for
    THEN only its alarm comes back, as CloudWatch answers (moto's own answer has both);
    asked without dimensions, both come back."""
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint)
    functions = [f"fn-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    metric = f"Age{uuid.uuid4().hex[:8]}"
    for function in functions:
        cloudwatch.put_metric_alarm(
            AlarmName=function,
            MetricName=metric,
            Namespace="AWS/Lambda",
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )

    def alarms(**asked: object) -> list[str]:
        answer = cloudwatch.describe_alarms_for_metric(
            MetricName=metric, Namespace="AWS/Lambda", **asked
        )
        return sorted(a["AlarmName"] for a in answer["MetricAlarms"])

    try:
        one = [{"Name": "FunctionName", "Value": functions[0]}]
        assert alarms(Dimensions=one) == [functions[0]]
        assert alarms(Dimensions=one, Statistic="Maximum", Period=60) == [functions[0]]
        assert alarms(Dimensions=one, Statistic="Average") == []
        assert alarms() == sorted(functions)
        with moto_patches.without("CloudWatchResponse.describe_alarms_for_metric"):
            assert alarms(Dimensions=one) == sorted(functions)
    finally:
        cloudwatch.delete_alarms(AlarmNames=functions)
