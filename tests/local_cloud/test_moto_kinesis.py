"""The emulator's constant-time Kinesis sequence lookups give the answers moto's own give."""

from __future__ import annotations

import base64
import uuid

import boto3
import pytest
from moto.kinesis.models import Shard

from local_cloud import moto_kinesis

DATA = base64.b64encode(b'{"device_id": "sensor-0001", "timestamp": 1}').decode()


@pytest.mark.parametrize("records", [0, 1, 2, 500])
def test_lookups_agree_with_moto_on_a_filled_shard(records):
    """GIVEN a moto shard holding some records
    WHEN its lowest and highest sequence numbers are looked up both ways
    THEN the constant-time lookups return what moto's own return (0 for an empty shard)."""
    shard = Shard(0, 0, 2**128 - 1)
    for _ in range(records):
        shard.put_record("sensor-0001", DATA, None)
    assert moto_kinesis.get_max_sequence_number(shard) == (
        moto_kinesis.MOTO_GET_MAX_SEQUENCE_NUMBER(shard)
    )
    assert moto_kinesis.get_min_sequence_number(shard) == (
        moto_kinesis.MOTO_GET_MIN_SEQUENCE_NUMBER(shard)
    )
    assert moto_kinesis.get_max_sequence_number(shard) == records


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
