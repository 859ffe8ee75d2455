"""MQTT end to end: devices publish to the embedded broker over TCP; the rules engine routes
their messages into Kinesis (and failures to the error action)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from local_cloud.iot_rules import InboundMessage, RulesEngine
from local_cloud.mqtt_broker import MqttBroker
from local_cloud.ports import PortInUse, free_port, port_is_free
from platform_tools.device_simulator import PublishError, publish
from tests.local_cloud import iot_support
from tests.local_cloud.iot_support import IotWorld, original_payload

world = iot_support.world
engine = iot_support.engine

# The project's original test payloads ("Testing" section of the project description).
SEED_PAYLOADS = [
    b'{"device_id": "sensor-101", "timestamp": 1700100000, "temperature": 22, "humidity": 55}',
    b'{"device_id": "sensor-102", "timestamp": 1700100500, "temperature": 75, "humidity": 40}',
    b'{"device_id": "sensor-103", "timestamp": 1700101000, "temperature": 21, "humidity": 10}',
    b'{"device_id": "sensor-104", "timestamp": 1700101500, "temperature": 30}',
    b"Invalid JSON Data",
    b'{"device_id": "sensor-105", "timestamp": 1700103000, "temperature": 150, "humidity": 30}',
    b'{"device_id": "sensor-106", "timestamp": 1700103500, "temperature": -10, "humidity": -5}',
    b'{"device_id": "sensor-107", "timestamp": 1700104000, "temperature": 25, "humidity": 65, '
    b'"pressure": 1012}',
]


@pytest.fixture
def broker(engine: RulesEngine) -> Iterator[MqttBroker]:
    """The embedded broker on a free port, feeding the rules engine."""
    with MqttBroker(engine.submit, port=free_port()) as running:
        yield running


def paho_client(broker: MqttBroker, client_id: str) -> mqtt.Client:
    """A connected paho client with its network loop running."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(5), "broker did not accept the connection"
    return client


def test_seed_payloads_over_mqtt_reach_kinesis_keyed_by_device(
    world: IotWorld, engine: RulesEngine, broker: MqttBroker
):
    """GIVEN the deployed rule shape on iot/sensors (SELECT *, key ${device_id}, S3 error
    action) and a second rule recording clientid()
    WHEN paho publishes the seed payloads at QoS 1
    THEN every JSON reading is in Kinesis byte-exact, in order, keyed by its device id; the
    invalid payload is in the error bucket; clientid() is the paho client id."""
    stream, bucket, clients = world.stream(), world.bucket(), world.stream()
    world.rule("SELECT * FROM 'iot/sensors'", stream=stream, error_bucket=bucket)
    world.rule(
        "SELECT clientid() AS cid FROM 'iot/sensors'", stream=clients, partition_key="${clientid()}"
    )
    engine.refresh()
    client_id = f"seed-device-{uuid.uuid4().hex[:6]}"
    client = paho_client(broker, client_id)
    try:
        infos = [client.publish("iot/sensors", p, qos=1) for p in SEED_PAYLOADS]
        for info in infos:
            info.wait_for_publish(5)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()

    assert engine.flush()
    readings = [p for p in SEED_PAYLOADS if p.startswith(b"{")]
    assert [(r["PartitionKey"], r["Data"]) for r in world.records(stream)] == [
        (json.loads(p)["device_id"], p) for p in readings
    ]
    (error,) = world.error_messages(bucket)
    assert original_payload(error) == b"Invalid JSON Data"
    assert error["clientId"] == client_id
    client_records = world.records(clients)
    assert len(client_records) == len(SEED_PAYLOADS)
    assert {r["PartitionKey"] for r in client_records} == {client_id}
    assert {json.loads(r["Data"])["cid"] for r in client_records} == {client_id}


def test_qos0_messages_are_routed_with_the_publisher_client_id(
    world: IotWorld, engine: RulesEngine, broker: MqttBroker
):
    """GIVEN a rule selecting clientid() WHEN a paho client publishes at QoS 0
    THEN the record carries that client's id (not the broker's or a subscriber's)."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    world.rule(f"SELECT clientid() AS cid, device_id FROM '{topic}'", stream=stream)
    engine.refresh()
    client = paho_client(broker, "qos0-publisher")
    try:
        client.publish(topic, b'{"device_id": "sensor-9"}', qos=0).wait_for_publish(5)
    finally:
        client.disconnect()  # DISCONNECT follows the PUBLISH on the same socket
        client.loop_stop()

    assert iot_support.wait_for(lambda: engine.flush() and len(world.records(stream)) == 1)
    (record,) = world.records(stream)
    assert json.loads(record["Data"]) == {"cid": "qos0-publisher", "device_id": "sensor-9"}


def test_publish_helper_waits_for_the_ack_and_uses_its_client_id(
    world: IotWorld, engine: RulesEngine, broker: MqttBroker
):
    """GIVEN device_simulator.publish WHEN it returns THEN the broker has the message."""
    received: list[InboundMessage] = []
    broker.on_message = received.append

    publish("iot/sensors", SEED_PAYLOADS[0], host=broker.host, port=broker.port, client_id="cli")

    assert iot_support.wait_for(lambda: len(received) == 1)
    assert (received[0].topic, received[0].payload, received[0].client_id) == (
        "iot/sensors",
        SEED_PAYLOADS[0],
        "cli",
    )


def test_publish_to_a_missing_broker_is_a_clear_error():
    """GIVEN no broker on a port WHEN publishing THEN PublishError names the address."""
    port = free_port()
    with pytest.raises(PublishError, match=f"127.0.0.1:{port}"):
        publish("iot/sensors", b"{}", port=port, timeout=2)


def test_start_stop_leaves_no_threads_and_frees_the_port():
    """GIVEN a broker that served a client WHEN stopped THEN no thread it made survives,
    and a new broker serves clients on the same port (as `up` does when restarted)."""
    before = set(threading.enumerate())
    port = free_port()
    received: list[InboundMessage] = []
    broker = MqttBroker(received.append, port=port).start()
    client = paho_client(broker, "short-lived")
    client.publish("a/b", b"x", qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    broker.stop()

    assert iot_support.wait_for(lambda: set(threading.enumerate()) <= before, timeout=5)
    assert received and received[0].payload == b"x"
    # A bare bind() without SO_REUSEADDR is not the test: the broker's side of the closed
    # connection may sit in TIME_WAIT on this port, which only a listener that (like every
    # server, and like the broker) sets SO_REUSEADDR may ignore.
    assert port_is_free(port), "demo and ui would move off a port the broker just released"
    again: list[InboundMessage] = []
    with MqttBroker(again.append, port=port) as restarted:
        client = paho_client(restarted, "after-restart")
        client.publish("a/b", b"y", qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        assert iot_support.wait_for(lambda: bool(again), timeout=5)
    assert again[0].payload == b"y"


def test_busy_port_is_a_clear_error():
    """GIVEN a port already in use WHEN the broker starts THEN it names the port, the broker
    and the host."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(
            PortInUse, match=f"port {port} for the MQTT broker is in use on 127.0.0.1"
        ):
            MqttBroker(port=port).start()


def test_error_payload_base64_round_trip_is_exact(
    world: IotWorld, engine: RulesEngine, broker: MqttBroker
):
    """GIVEN binary garbage published over MQTT to the deployed rule shape
    THEN the error message's base64OriginalPayload decodes to the exact bytes."""
    topic = f"iot/{uuid.uuid4().hex}"
    bucket = world.bucket()
    world.rule(f"SELECT * FROM '{topic}'", stream=world.stream(), error_bucket=bucket)
    engine.refresh()
    garbage = bytes(range(256))
    publish(topic, garbage, host=broker.host, port=broker.port)

    assert engine.flush()
    assert iot_support.wait_for(lambda: len(world.error_messages(bucket)) == 1)
    (error,) = world.error_messages(bucket)
    assert base64.b64decode(error["base64OriginalPayload"]) == garbage
