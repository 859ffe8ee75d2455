"""The rules engine against the real emulator: rules from the IoT API, records in Kinesis,
error messages in S3."""

from __future__ import annotations

import json
import re
import uuid

from local_cloud.iot_rules import InboundMessage, RulesEngine
from tests.local_cloud import iot_support
from tests.local_cloud.iot_support import IotWorld, original_payload, wait_for

world = iot_support.world
engine = iot_support.engine

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def reading(device_id: str = "sensor-101", **fields: object) -> bytes:
    """A seed-style reading as JSON bytes."""
    body = {"device_id": device_id, "timestamp": 1700100000, "temperature": 22, "humidity": 55}
    return json.dumps({**body, **fields}).encode()


def test_kinesis_action_uses_device_id_as_partition_key(world: IotWorld, engine: RulesEngine):
    """GIVEN the deployed rule shape (SELECT *, key ${device_id})
    WHEN readings from two devices arrive
    THEN each is one Kinesis record, byte-exact, keyed by its device id."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    world.rule(f"SELECT * FROM '{topic}'", stream=stream)
    engine.refresh()

    payloads = [reading("sensor-101"), reading("sensor-102", temperature=75)]
    for payload in payloads:
        engine.process(InboundMessage(topic, payload, "dev-1"))

    records = world.records(stream)
    assert [(r["PartitionKey"], r["Data"]) for r in records] == [
        ("sensor-101", payloads[0]),
        ("sensor-102", payloads[1]),
    ]


def test_newuuid_partition_key(world: IotWorld, engine: RulesEngine):
    """GIVEN a rule keyed by ${newuuid()} WHEN two messages arrive THEN two distinct UUID keys."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    world.rule(f"SELECT * FROM '{topic}'", stream=stream, partition_key="${newuuid()}")
    engine.refresh()

    for _ in range(2):
        engine.process(InboundMessage(topic, reading(), "dev-1"))

    keys = [r["PartitionKey"] for r in world.records(stream)]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(UUID.fullmatch(k) for k in keys)


def test_topic_filters_route_only_matching_topics(world: IotWorld, engine: RulesEngine):
    """GIVEN rules on 'x/+/telemetry', 'x/#' and an exact topic
    WHEN messages arrive on several topics THEN each stream gets exactly its matches."""
    root = f"t{uuid.uuid4().hex[:8]}"
    plus, hash_, exact = world.stream(), world.stream(), world.stream()
    world.rule(f"SELECT * FROM '{root}/+/telemetry'", stream=plus, partition_key="${topic(2)}")
    world.rule(f"SELECT * FROM '{root}/#'", stream=hash_, partition_key="${topic()}")
    world.rule(f"SELECT * FROM '{root}/a/telemetry'", stream=exact)
    engine.refresh()

    for topic in (f"{root}/a/telemetry", f"{root}/b/telemetry", f"{root}/a/b/telemetry"):
        engine.process(InboundMessage(topic, reading(), "dev-1"))
    engine.process(InboundMessage("elsewhere/a/telemetry", reading(), "dev-1"))

    assert [r["PartitionKey"] for r in world.records(plus)] == ["a", "b"]
    assert [r["PartitionKey"] for r in world.records(hash_)] == [
        f"{root}/a/telemetry",
        f"{root}/b/telemetry",
        f"{root}/a/b/telemetry",
    ]
    assert len(world.records(exact)) == 1


def test_where_filters_and_missing_attribute_does_not_match(world: IotWorld, engine: RulesEngine):
    """GIVEN WHERE temperature > 50 AND NOT humidity < 10
    WHEN hot, cool, dry-hot and temperature-less readings arrive
    THEN only the hot, humid one reaches Kinesis."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    world.rule(
        f"SELECT * FROM '{topic}' WHERE temperature > 50 AND NOT humidity < 10", stream=stream
    )
    engine.refresh()

    engine.process(InboundMessage(topic, reading("hot", temperature=75, humidity=40), "d"))
    engine.process(InboundMessage(topic, reading("cool", temperature=21), "d"))
    engine.process(InboundMessage(topic, reading("dry", temperature=75, humidity=5), "d"))
    engine.process(InboundMessage(topic, json.dumps({"device_id": "none"}).encode(), "d"))

    assert [r["PartitionKey"] for r in world.records(stream)] == ["hot"]


def test_select_projection_aliases_and_functions(world: IotWorld, engine: RulesEngine):
    """GIVEN a projecting SELECT with topic(2), clientid() and timestamp()
    WHEN a message arrives THEN the Kinesis record holds exactly the projection,
    while the partition-key template still reads the ORIGINAL payload."""
    site = f"site{uuid.uuid4().hex[:6]}"
    stream = world.stream()
    world.rule(
        f"SELECT device_id AS id, temperature * 9 / 5 + 32 AS fahrenheit, topic(2) AS site, "
        f"clientid() AS client, timestamp() AS received FROM 'fleet/{site}/+'",
        stream=stream,
        partition_key="${device_id}",
    )
    engine.refresh()

    engine.process(InboundMessage(f"fleet/{site}/telemetry", reading(temperature=20), "paho-9"))

    (record,) = world.records(stream)
    data = json.loads(record["Data"])
    received = data.pop("received")
    assert data == {"id": "sensor-101", "fahrenheit": 68, "site": site, "client": "paho-9"}
    assert isinstance(received, int) and received > 1_700_000_000_000  # epoch ms
    assert record["PartitionKey"] == "sensor-101"  # alias 'id' is not visible to templates


def test_non_json_under_select_star_passes_byte_exact(world: IotWorld, engine: RulesEngine):
    """GIVEN SELECT * keyed by ${topic(1)} WHEN a binary payload arrives
    THEN it lands in Kinesis unchanged."""
    root = f"bin{uuid.uuid4().hex[:8]}"
    stream = world.stream()
    world.rule(f"SELECT * FROM '{root}/raw'", stream=stream, partition_key="${topic(1)}")
    engine.refresh()

    payload = b"Invalid JSON Data \x00\xfe\xff"
    engine.process(InboundMessage(f"{root}/raw", payload, "dev-1"))

    assert [(r["PartitionKey"], r["Data"]) for r in world.records(stream)] == [(root, payload)]


def test_non_json_with_where_on_field_does_not_match(world: IotWorld, engine: RulesEngine):
    """GIVEN a WHERE on a field WHEN a non-JSON payload arrives
    THEN nothing is put and no error action runs (a SQL mismatch is not an action failure)."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream, bucket = world.stream(), world.bucket()
    world.rule(
        f"SELECT * FROM '{topic}' WHERE temperature > 0",
        stream=stream,
        partition_key="${topic()}",
        error_bucket=bucket,
    )
    engine.refresh()

    (result,) = engine.process(InboundMessage(topic, b"Invalid JSON Data", "dev-1"))

    assert result.matched is False
    assert world.records(stream) == []
    assert world.error_messages(bucket) == []


def test_empty_partition_key_goes_to_error_action(world: IotWorld, engine: RulesEngine):
    """GIVEN the deployed rule (key ${device_id}) WHEN a non-JSON payload (seed test 5) and a
    reading without device_id arrive THEN PutRecord fails on the empty key, as in AWS, and
    each message goes to the error action with its payload recoverable."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream, bucket = world.stream(), world.bucket()
    rule = world.rule(f"SELECT * FROM '{topic}'", stream=stream, error_bucket=bucket)
    engine.refresh()

    bad = [b"Invalid JSON Data", json.dumps({"timestamp": 1, "temperature": 3}).encode()]
    for payload in bad:
        engine.process(InboundMessage(topic, payload, "dev-7"))

    assert world.records(stream) == []
    errors = world.error_messages(bucket)
    assert sorted(original_payload(e) for e in errors) == sorted(bad)
    for error in errors:
        assert error["ruleName"] == rule and error["topic"] == topic
        assert error["clientId"] == "dev-7"
        (failure,) = error["failures"]
        assert failure["failedAction"] == "KinesisAction"
        assert failure["failedResource"] == stream
        assert "Member must have length greater than or equal to 1" in failure["errorMessage"]


def test_missing_stream_writes_documented_error_message(world: IotWorld, engine: RulesEngine):
    """GIVEN a rule whose Kinesis stream does not exist WHEN a reading arrives
    THEN exactly one error message in AWS's shape lands in S3 under the key template."""
    topic = f"iot/{uuid.uuid4().hex}"
    bucket = world.bucket()
    rule = world.rule(f"SELECT * FROM '{topic}'", stream="no-such-stream", error_bucket=bucket)
    engine.refresh()
    payload = reading("sensor-104")

    engine.process(InboundMessage(topic, payload, "paho-1"))

    s3 = world.client("s3")
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert obj["Key"].startswith(f"errors/{topic}/")
    (error,) = world.error_messages(bucket)
    assert set(error) == {
        "ruleName",
        "topic",
        "cloudwatchTraceId",
        "clientId",
        "base64OriginalPayload",
        "failures",
    }
    assert (error["ruleName"], error["topic"], error["clientId"]) == (rule, topic, "paho-1")
    assert original_payload(error) == payload
    (failure,) = error["failures"]
    assert failure["failedAction"] == "KinesisAction"
    assert failure["failedResource"] == "no-such-stream"
    assert "ResourceNotFoundException" in failure["errorMessage"]
    assert "no-such-stream" in failure["errorMessage"]


def test_cloudwatch_logs_error_action(world: IotWorld, engine: RulesEngine):
    """GIVEN a CloudWatch Logs error action WHEN the Kinesis action fails
    THEN the error message is a log event in that group."""
    topic = f"iot/{uuid.uuid4().hex}"
    group = f"/iot/errors/{uuid.uuid4().hex[:8]}"
    logs = world.client("logs")
    logs.create_log_group(logGroupName=group)
    rule = world.rule(
        f"SELECT * FROM '{topic}'",
        stream="missing-stream",
        error_action={"cloudwatchLogs": {"logGroupName": group, "roleArn": iot_support.ROLE_ARN}},
    )
    engine.refresh()

    engine.process(InboundMessage(topic, reading(), "dev-1"))

    events = logs.get_log_events(logGroupName=group, logStreamName=rule)["events"]
    (event,) = events
    assert json.loads(event["message"])["ruleName"] == rule


def test_disabled_rules_are_skipped_and_changes_are_picked_up(world: IotWorld, engine: RulesEngine):
    """GIVEN a disabled rule WHEN a message arrives THEN nothing is routed; AND WHEN the rule
    is enabled and later replaced THEN refresh applies each change."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    rule = world.rule(f"SELECT * FROM '{topic}'", stream=stream, disabled=True)
    iot = world.client("iot")
    engine.refresh()

    engine.process(InboundMessage(topic, reading("first"), "d"))
    iot.enable_topic_rule(ruleName=rule)
    engine.refresh()
    engine.process(InboundMessage(topic, reading("second"), "d"))
    iot.replace_topic_rule(
        ruleName=rule,
        topicRulePayload={
            "sql": f"SELECT * FROM '{topic}' WHERE temperature > 50",
            "actions": [
                {
                    "kinesis": {
                        "streamName": stream,
                        "partitionKey": "${device_id}",
                        "roleArn": iot_support.ROLE_ARN,
                    }
                }
            ],
        },
    )
    engine.refresh()
    engine.process(InboundMessage(topic, reading("third", temperature=20), "d"))
    engine.process(InboundMessage(topic, reading("fourth", temperature=60), "d"))

    assert [r["PartitionKey"] for r in world.records(stream)] == ["second", "fourth"]


def test_rules_refresh_on_their_own(aws_endpoint: str, world: IotWorld):
    """GIVEN a running engine with a short refresh interval WHEN a rule is created
    THEN the engine routes by it without being told."""
    eng = RulesEngine(aws_endpoint, world.region, refresh_interval=0.1).start()
    try:
        topic = f"iot/{uuid.uuid4().hex}"
        stream = world.stream()
        rule = world.rule(f"SELECT * FROM '{topic}'", stream=stream)
        assert wait_for(lambda: any(r.name == rule for r in eng.rules))
        eng.submit(InboundMessage(topic, reading(), "d"))
        assert eng.flush()
        assert len(world.records(stream)) == 1
    finally:
        eng.stop()


def test_rule_with_unsupported_sql_is_reported_and_others_still_route(
    world: IotWorld, engine: RulesEngine
):
    """GIVEN one rule using an unsupported function and one good rule
    WHEN rules load THEN the bad one is listed with its reason and the good one routes."""
    topic = f"iot/{uuid.uuid4().hex}"
    stream = world.stream()
    bad = world.rule(f"SELECT md5(device_id) AS h FROM '{topic}'", stream=stream)
    world.rule(f"SELECT * FROM '{topic}'", stream=stream)
    engine.refresh()

    engine.process(InboundMessage(topic, reading(), "d"))

    assert "md5() is not supported" in engine.rule_errors[bad]
    assert len(world.records(stream)) == 1
