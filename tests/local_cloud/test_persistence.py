"""Snapshots of moto's state: what the local cloud's pickler writes comes back as moto had it."""

from __future__ import annotations

import base64
import io
import pickle
import uuid

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends
from moto.kinesis.models import kinesis_backends

from local_cloud import defaults
from local_cloud.dynamodb_exports import known_image
from local_cloud.dynamodb_stream_reader import BackendStreamReader
from local_cloud.persistence import StatePickler
from tests.support.readings_table import create_readings_table

ACCOUNT = "123456789012"

READINGS = [
    {
        "device_id": {"S": "sensor-0001"},
        "timestamp": {"N": "1700000000.5"},
        "temperature": {"N": "22.5"},
        "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}, {"N": "3"}]},
        "extra": {"M": {"pressure": {"N": "1012"}, "ok": {"BOOL": True}, "none": {"NULL": True}}},
        "tags": {"SS": ["a", "b"]},
        "levels": {"NS": ["1", "2.5"]},
    },
    {"device_id": {"S": "sensor-0002"}, "timestamp": {"N": "1700000001"}},
    {
        "device_id": {"S": "sensor-0003"},
        "timestamp": {"N": "1700000002"},
        "raw": {"B": base64.b64encode(b"\x00\x01\xff").decode()},
        "chunks": {"BS": [base64.b64encode(b"\x02").decode()]},
    },
]


def _round_trip(obj: object) -> object:
    buffer = io.BytesIO()
    StatePickler(buffer).dump(obj)
    return pickle.loads(buffer.getvalue())


def _table(aws_endpoint: str, *, pitr: bool) -> object:
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    name = f"snap-{uuid.uuid4().hex[:8]}"
    create_readings_table(dynamodb, name, pitr=pitr)
    dynamodb.batch_write_item(
        RequestItems={name: [{"PutRequest": {"Item": item}} for item in READINGS]}
    )
    dynamodb.update_item(
        TableName=name,
        Key={"device_id": {"S": "sensor-0002"}, "timestamp": {"N": "1700000001"}},
        UpdateExpression="SET humidity = :h",
        ExpressionAttributeValues={":h": {"N": "41"}},
    )
    return dynamodb_backends[ACCOUNT][defaults.REGION].get_table(name)


@pytest.mark.parametrize("pitr", [True, False], ids=["images kept (PITR on)", "PITR off"])
def test_a_table_comes_back_with_the_items_moto_held(aws_endpoint, pitr):
    """GIVEN a moto table holding items of every attribute type (lists, maps, sets, binary),
    one of them updated in place, with and without the change journal's images
    WHEN the table is pickled by the snapshot pickler and loaded again
    THEN every item is the one moto held: the same keys and attributes, the same JSON."""
    table = _table(aws_endpoint, pitr=pitr)
    before = {(i.hash_key.value, i.range_key.value): i for i in table.all_items()}
    if pitr:
        assert all(known_image(i) is not None for i in before.values())
    restored = _round_trip(table)
    after = {(i.hash_key.value, i.range_key.value): i for i in restored.all_items()}
    assert after.keys() == before.keys()
    for key, item in before.items():
        assert after[key] == item
        assert after[key].to_json() == item.to_json()
        assert type(after[key].hash_key) is type(item.hash_key)
    humid = after[("sensor-0002", "1700000001")]
    assert humid.attrs["humidity"].value == "41"
    raw = after[("sensor-0003", "1700000002")].attrs["raw"].value
    assert raw == before[("sensor-0003", "1700000002")].attrs["raw"].value


def test_a_restored_item_keeps_its_image_for_exports(aws_endpoint):
    """GIVEN a table with point-in-time recovery, whose items carry their images
    WHEN it is pickled and loaded
    THEN each restored item (without binary attributes) carries the same image."""
    table = _table(aws_endpoint, pitr=True)
    images = {(i.hash_key.value, i.range_key.value): known_image(i) for i in table.all_items()}
    restored = _round_trip(table)
    for item in restored.all_items():
        image = known_image(item)
        if "raw" not in item.attrs:
            assert image == images[(item.hash_key.value, item.range_key.value)]


def test_a_stream_comes_back_with_its_records_in_order(aws_endpoint):
    """GIVEN a two-shard stream with records put over the Kinesis API, and an empty stream
    WHEN the streams are pickled and loaded
    THEN every shard holds the same records under the same sequence numbers, in order, with
    their partition keys, data and arrival times, and the empty stream stays empty."""
    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    name, empty = f"snap-{uuid.uuid4().hex[:8]}", f"snap-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.create_stream(StreamName=empty, ShardCount=1)
    for i in range(50):
        kinesis.put_record(StreamName=name, Data=f'{{"n": {i}}}'.encode(), PartitionKey=f"k{i}")
    streams = kinesis_backends[ACCOUNT][defaults.REGION].streams
    original = {n: streams[n] for n in (name, empty)}
    restored = _round_trip(original)
    for stream_name, stream in original.items():
        for shard_id, shard in stream.shards.items():
            copy = restored[stream_name].shards[shard_id]
            assert list(copy.records) == list(shard.records)
            assert [r.__dict__ for r in copy.records.values()] == [
                r.__dict__ for r in shard.records.values()
            ]
            assert copy.get_max_sequence_number() == shard.get_max_sequence_number()
    assert sum(len(s.records) for s in restored[name].shards.values()) == 50
    assert not any(s.records for s in restored[empty].shards.values())


def test_a_table_stream_comes_back_with_its_records_numbered_as_before(aws_endpoint):
    """GIVEN a table whose stream holds an insert (with a binary attribute), a modification
    and a deletion, and a mapping's checkpoint at its second record
    WHEN the table is pickled by the snapshot pickler and loaded again
    THEN its stream holds the same records under the same sequence numbers, so the
    checkpoint (saved with the same snapshot) points at the same record: a runner reading
    the restored stream after it gets exactly the records it had not finished; and the next
    write is numbered after them."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    name = f"snap-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName=name, Item={"id": {"N": "1"}, "raw": {"B": b"\x00\xff"}})
    dynamodb.put_item(TableName=name, Item={"id": {"N": "1"}, "outbox": {"S": "[]"}})
    dynamodb.delete_item(TableName=name, Key={"id": {"N": "1"}})
    table = dynamodb_backends[ACCOUNT][defaults.REGION].get_table(name)
    before = BackendStreamReader(table.stream_shard).read_after(0, 10)
    checkpoint = int(before[1].sequence_number)

    restored = _round_trip(table)

    reader = BackendStreamReader(restored.stream_shard)
    assert reader.read_after(0, 10) == before
    assert reader.read_after(checkpoint, 10) == before[2:]
    assert reader.latest_sequence() == int(before[-1].sequence_number)
    restored.put_item({"id": {"N": "2"}})
    (after,) = reader.read_after(reader.latest_sequence() - 1, 10)
    assert (after.event_name, int(after.sequence_number)) == (
        "INSERT",
        int(before[-1].sequence_number) + 1,
    )
