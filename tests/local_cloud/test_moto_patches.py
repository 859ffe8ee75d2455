"""The local cloud's changes to moto: the same answers as moto's own, and moto restored after."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

import boto3
import pytest
from moto.kinesis.models import Shard
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_cloud import moto_patches

DATA = base64.b64encode(b'{"device_id": "sensor-0001", "timestamp": 1}').decode()


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
