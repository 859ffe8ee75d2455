"""The IoT Data API door: ``iot-data publish`` to the emulator routes through the rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from local_cloud.iot_data_hook import IotDataPublishHook
from local_cloud.iot_rules import InboundMessage, RulesEngine
from platform_tools.device_simulator import publish_via_iot_data
from tests.local_cloud import iot_support
from tests.local_cloud.iot_support import IotWorld

world = iot_support.world
engine = iot_support.engine


@pytest.fixture
def hooked(engine: RulesEngine) -> Iterator[IotDataPublishHook]:
    """iot-data publish in the test region handed to the rules engine."""
    hook = IotDataPublishHook(engine.submit, region=engine.region).start()
    yield hook
    hook.stop()


def test_boto3_iot_data_publish_routes_through_rules(
    world: IotWorld, engine: RulesEngine, hooked: IotDataPublishHook
):
    """GIVEN the deployed rule shape WHEN boto3 iot-data publishes a seed reading to the
    emulator THEN it is in Kinesis keyed by device id, and clientid() is 'n/a' as in AWS."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream, clients = world.stream(), world.stream()
    world.rule(f"SELECT * FROM '{topic}'", stream=stream)
    world.rule(
        f"SELECT clientid() AS cid FROM '{topic}'", stream=clients, partition_key="${topic()}"
    )
    engine.refresh()
    payload = b'{"device_id": "sensor-107", "timestamp": 1700104000, "temperature": 25}'

    world.client("iot-data").publish(topic=topic, qos=1, payload=payload)

    assert engine.flush()
    assert [(r["PartitionKey"], r["Data"]) for r in world.records(stream)] == [
        ("sensor-107", payload)
    ]
    (record,) = world.records(clients)
    assert json.loads(record["Data"]) == {"cid": "n/a"}


def test_publish_helper_and_moto_still_records_the_message(
    world: IotWorld, engine: RulesEngine, hooked: IotDataPublishHook
):
    """GIVEN the hook WHEN device_simulator.publish_via_iot_data publishes
    THEN the rules route it AND moto's own record of published messages still has it."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    world.rule(f"SELECT * FROM '{topic}'", stream=stream)
    engine.refresh()
    payload = b'{"device_id": "sensor-108", "timestamp": 1}'

    publish_via_iot_data(topic, payload, endpoint_url=world.endpoint_url, region=world.region)

    assert engine.flush()
    assert [r["Data"] for r in world.records(stream)] == [payload]
    backend = iotdata_backends[engine.account_id][world.region]
    assert (topic, payload) in backend.published_payloads


def test_hooks_are_removed_one_by_one(world: IotWorld):
    """GIVEN two hooks WHEN they are removed one by one THEN routing stops for the removed
    one only, and moto alone still records publishes once none is left."""
    first: list[InboundMessage] = []
    second: list[InboundMessage] = []
    hook_a = IotDataPublishHook(first.append).start()
    hook_b = IotDataPublishHook(second.append, region=world.region).start()
    iot_data = world.client("iot-data")
    topic = f"hooks/{uuid.uuid4().hex}"
    try:
        iot_data.publish(topic=topic, payload=b"one")
        hook_a.stop()
        iot_data.publish(topic=topic, payload=b"two")
    finally:
        hook_a.stop()
        hook_b.stop()

    assert [m.payload for m in first] == [b"one"]
    assert [m.payload for m in second] == [b"one", b"two"]
    iot_data.publish(topic=topic, payload=b"three")  # moto alone still works
    assert [m.payload for m in second] == [b"one", b"two"]
    backend = iotdata_backends[DEFAULT_ACCOUNT_ID][world.region]
    assert (topic, b"three") in backend.published_payloads


def test_hook_ignores_other_regions(world: IotWorld):
    """GIVEN a hook for another region WHEN a message is published here THEN it is ignored."""
    seen: list[InboundMessage] = []
    hook = IotDataPublishHook(seen.append, region="us-east-1").start()
    try:
        world.client("iot-data").publish(topic="iot/sensors", payload=b"{}")
    finally:
        hook.stop()
    assert seen == []
