"""Alert state changes as the function and the silence check make them, and the alert
notifier sends them, against the AWS emulator over HTTP: the state table's stream is read
for the notifier as Lambda's mapping reads it, and an event bus whose rule delivers to an
SQS queue shows what was sent."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cloudformation.naming import Naming
from cloudformation.stacks import build_templates, render
from stream_processor import contract
from stream_processor.alert_notifier import AlertNotifier
from stream_processor.alert_state import AlertStateTable, seen_texts
from stream_processor.aws_clients import make_client
from stream_processor.config import Config, ConfigError, load_config
from stream_processor.handler import StreamProcessor
from stream_processor.retry import Deadline
from stream_processor.silence_check import SilenceCheck
from tests.stream_processor.conftest import REGION, create_table
from tests.support.kinesis_events import SHARD_ID, STREAM_ARN, kinesis_event, kinesis_record
from tests.support.readings_table import create_alert_state_table
from tests.support.state_stream import StateStream


@dataclass
class AlertCloud:
    """A readings table, quarantine bucket, alert state table and bus, and the bus's events."""

    config: Config
    sqs: Any
    dynamodb: Any
    queue_url: str
    stream: StateStream

    def notify(self, bus_name: str | None = None) -> dict[str, Any]:
        """Hand the state writes made since the last call to the alert notifier (on `bus_name`,
        by default the configured bus); its answer."""
        bus = bus_name or self.config.alert_bus_name
        assert bus is not None
        notifier = AlertNotifier(bus, make_client("events", 1))
        return notifier.notify(self.stream.new_records(), Deadline(None))

    def events(self) -> list[dict[str, Any]]:
        """Every alert event delivered so far (the rule's SQS target), in arrival order, once
        the notifier has sent what the state table's stream holds."""
        assert self.notify()["batchItemFailures"] == []
        found: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def states(self, device_id: str) -> list[str]:
        """The states of the events received for one device."""
        return [
            e["detail"]["state"] for e in self.events() if e["detail"]["device_id"] == device_id
        ]


@pytest.fixture
def alert_cloud(aws_endpoint: str) -> Iterator[AlertCloud]:
    """Fresh tables, bucket and bus (unique names); a rule sends the bus's alerts to a queue."""
    suffix = uuid.uuid4().hex[:12]
    dynamodb, s3 = make_client("dynamodb", 4), make_client("s3", 4)
    events, sqs = make_client("events", 2), make_client("sqs", 2)
    state_table, bus = f"alertstate-{suffix}", f"alerts-{suffix}"
    config = Config(
        table_name=f"readings-{suffix}",
        quarantine_bucket=f"quarantine-{suffix}",
        alert_state_table=state_table,
        alert_bus_name=bus,
        silence_window_s=600,
    )
    create_table(dynamodb, config.table_name)
    create_alert_state_table(dynamodb, state_table)
    s3.create_bucket(
        Bucket=config.quarantine_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"alerts-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.put_rule(
        Name="all-alerts",
        EventBusName=bus,
        EventPattern=json.dumps({"source": [contract.ALERT_EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule="all-alerts",
        EventBusName=bus,
        Targets=[{"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]}],
    )
    yield AlertCloud(config, sqs, dynamodb, queue_url, StateStream(dynamodb, state_table))


def _reading(device: str, timestamp: float, temperature: Any, humidity: Any = 50) -> dict:
    return {
        "device_id": device,
        "timestamp": timestamp,
        "temperature": temperature,
        "humidity": humidity,
    }


def _process(config: Config, readings: list[dict[str, Any]]) -> dict[str, Any]:
    processor = StreamProcessor(config)
    try:
        return processor.process(kinesis_event(readings, arrival=time.time()))
    finally:
        processor.close()


def test_a_lasting_alert_reminds_at_most_once_per_interval(alert_cloud: AlertCloud) -> None:
    """GIVEN reminders every 2 minutes of reading time
    WHEN a device alerts for five minutes, then clears
    THEN RAISED, a REMINDER two and four minutes on, then CLEARED: nothing in between."""
    config = replace(alert_cloud.config, alert_reminder_s=120)
    start = int(time.time()) - 900
    alerting = [_reading("fridge-1", start + 60 * i, 60) for i in range(6)]
    assert _process(config, [*alerting, _reading("fridge-1", start + 360, 20)]) == {
        "batchItemFailures": []
    }

    events = alert_cloud.events()
    assert [e["detail"]["state"] for e in events] == [
        contract.RAISED,
        contract.REMINDER,
        contract.REMINDER,
        contract.CLEARED,
    ]
    assert [e["detail"]["reading_timestamp"] for e in events] == [
        start,
        start + 120,
        start + 240,
        start + 360,
    ]
    assert {e["detail"]["since_timestamp"] for e in events} == {start}
    assert events[1]["detail-type"] == contract.ALERT_DETAIL_TYPES[contract.REMINDER]
    assert list(events[0]["detail"]) == list(contract.ALERT_DETAIL_FIELDS)


def test_a_change_the_bus_refuses_is_reported_for_retry_and_sent_once_later(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN a batch that raises an alert for one device beside a quiet one, and the Kinesis
    batch delivered again
    WHEN the notifier gets the state writes while the bus does not exist yet
    THEN it reports the alerting device's write in batchItemFailures, and once the bus
    exists the write delivered again raises the alert once."""
    config = alert_cloud.config
    start = int(time.time()) - 600
    readings = [_reading("calm-1", start, 20), _reading("hot-1", start, 70)]
    for _ in range(2):  # the function's own batch, delivered twice
        assert _process(config, readings) == {"batchItemFailures": []}
    stored = alert_cloud.dynamodb.scan(TableName=config.table_name)["Items"]
    assert {i["device_id"]["S"] for i in stored} == {"calm-1", "hot-1"}

    records = alert_cloud.stream.new_records()
    with_events = [r for r in records if contract.ALERT_OUTBOX in r["dynamodb"]["NewImage"]]
    assert len(with_events) == 1  # one change, stored once
    broken = AlertNotifier(f"missing-{uuid.uuid4().hex[:8]}", make_client("events", 1))
    answer = broken.notify(records, Deadline(None))
    sequence = with_events[0]["dynamodb"]["SequenceNumber"]
    assert answer["batchItemFailures"] == [{"itemIdentifier": sequence}]
    assert alert_cloud.events() == []

    failed_on = records[[r["dynamodb"]["SequenceNumber"] for r in records].index(sequence) :]
    assert config.alert_bus_name is not None
    working = AlertNotifier(config.alert_bus_name, make_client("events", 1))
    assert working.notify(failed_on, Deadline(None))["batchItemFailures"] == []
    assert alert_cloud.states("hot-1") == [contract.RAISED]


def test_only_one_of_the_alert_settings_is_a_configuration_error() -> None:
    """GIVEN an alert table without a bus THEN the settings fail, naming both variables."""
    environ = {
        contract.ENV_TABLE_NAME: "readings",
        contract.ENV_QUARANTINE_BUCKET: "quarantine",
        contract.ENV_ALERT_STATE_TABLE: "alertstate",
    }
    with pytest.raises(ConfigError, match=contract.ENV_ALERT_BUS_NAME):
        load_config(environ)
    assert not load_config({k: v for k, v in environ.items() if "ALERT" not in k}).alerts_enabled


def test_the_silence_check_announces_only_devices_silent_for_the_whole_window(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN three devices seen (by their shard's `seen` item) 20 minutes ago: one silent
    since, one whose readings went on (the `seen` item lags behind), one already announced,
    and one seen longer ago than the state's retention
    WHEN the check runs twice with a 10-minute window
    THEN only the first is announced, once."""
    config = alert_cloud.config
    now = time.time()
    table = config.alert_state_table
    assert table is not None
    for device, stored_at in (("gone", now - 1200), ("lagging", now - 60), ("known", now - 1200)):
        alert_cloud.dynamodb.put_item(
            TableName=config.table_name,
            Item={
                contract.DEVICE_ID: {"S": device},
                contract.TIMESTAMP: {"N": str(int(stored_at))},
                contract.INGESTED_AT: {"N": str(stored_at)},
            },
        )
    seen = {device: now - 1200 for device in ("gone", "lagging", "known")}
    seen["forgotten"] = now - config.alert_state_ttl_days * 86400 - 60
    alert_cloud.dynamodb.put_item(
        TableName=table,
        Item={
            contract.DEVICE_ID: {"S": contract.SHARD_KEY_PREFIX + "shard-1"},
            contract.STATE_KIND: {"S": contract.SEEN_KIND + "#0"},
            contract.SEEN_DEVICES: {"S": json.dumps(seen)},
        },
    )
    alert_cloud.dynamodb.put_item(
        TableName=table,
        Item={
            contract.DEVICE_ID: {"S": "known"},
            contract.STATE_KIND: {"S": contract.ALERTS_KIND},
            contract.STATE_VERSION: {"N": "1"},
            contract.RAISED_ALERTS: {"M": {}},
            contract.SILENT_SINCE: {"N": str(now - 1200)},
        },
    )
    check = SilenceCheck(config)
    try:
        first = check.run(now, Deadline(None))
        second = check.run(now + 60, Deadline(None))
    finally:
        check.close()

    events = alert_cloud.events()
    assert [(e["detail"]["device_id"], e["detail"]["state"]) for e in events] == [
        ("gone", contract.DEVICE_SILENT)
    ]
    assert events[0]["detail"]["since_timestamp"] == pytest.approx(now - 1200)
    assert (first["newly_silent"], second["newly_silent"]) == (1, 0)
    assert first["devices"] == 3


def test_two_execution_environments_taking_turns_on_a_shard_miss_no_change(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN two execution environments of the function, as Lambda runs a shard's batches
    in whichever is free
    WHEN the first raises an alert, the second clears it, and the first gets the next
    alerting reading
    THEN RAISED, CLEARED, RAISED: what the first remembered is not trusted once the other
    processed the shard."""
    config = alert_cloud.config
    start = int(time.time()) - 600
    first, second = StreamProcessor(config), StreamProcessor(config)
    try:
        for index, (environment, temperature) in enumerate(
            [(first, 70), (second, 20), (first, 71)]
        ):
            event = {
                "Records": [
                    kinesis_record(
                        _reading("oven-1", start + 60 * index, temperature),
                        index,
                        arrival=time.time(),
                    )
                ]
            }
            assert environment.process(event) == {"batchItemFailures": []}
    finally:
        first.close()
        second.close()

    assert alert_cloud.states("oven-1") == [contract.RAISED, contract.CLEARED, contract.RAISED]


def test_an_environment_that_cannot_take_the_lease_stores_no_change_and_sends_it_back(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN an execution environment that processed the shard's last batch and remembers
    the oven as quiet
    WHEN another environment gets the oven's alerting reading but cannot take the shard's
    lease (DynamoDB refuses its put), and the first then gets that reading again, and a
    normal one
    THEN the second stores and announces nothing and reports the record for retry; the
    first raises the alert and then clears it: it would not have learnt of a state the
    second stored."""
    config = alert_cloud.config
    start = int(time.time()) - 600
    refused = make_client("dynamodb", 4)

    def refuse_lease(params: dict[str, Any], **_: Any) -> None:
        if params["Item"][contract.STATE_KIND]["S"] == contract.LEASE_KIND:
            error = {"Code": "AccessDeniedException", "Message": "not allowed"}
            raise ClientError({"Error": error}, "PutItem")

    refused.meta.events.register("provide-client-params.dynamodb.PutItem", refuse_lease)
    first, second = StreamProcessor(config), StreamProcessor(config, dynamodb=refused)
    quiet, alerting, back = (
        kinesis_record(_reading("oven-1", start + 60 * i, t), i, arrival=time.time())
        for i, t in enumerate([20, 70, 20])
    )
    try:
        assert first.process({"Records": [quiet]}) == {"batchItemFailures": []}
        assert second.process({"Records": [alerting]}) == {
            "batchItemFailures": [{"itemIdentifier": alerting["kinesis"]["sequenceNumber"]}]
        }
        assert alert_cloud.states("oven-1") == []
        for record in (alerting, back):
            assert first.process({"Records": [record]}) == {"batchItemFailures": []}
    finally:
        first.close()
        second.close()

    assert alert_cloud.states("oven-1") == [contract.RAISED, contract.CLEARED]


def _seen(alert_cloud: AlertCloud) -> dict[str, dict[str, float]]:
    """The `seen` items of the state table, by shard key and kind: device id to time."""
    table = alert_cloud.config.alert_state_table
    assert table is not None
    items = alert_cloud.dynamodb.scan(
        TableName=table,
        FilterExpression="begins_with(#kind, :seen)",
        ExpressionAttributeNames={"#kind": contract.STATE_KIND},
        ExpressionAttributeValues={":seen": {"S": contract.SEEN_KIND + "#"}},
        ConsistentRead=True,
    )["Items"]
    return {
        f"{i[contract.DEVICE_ID]['S']} {i[contract.STATE_KIND]['S']}": json.loads(
            i[contract.SEEN_DEVICES]["S"]
        )
        for i in items
    }


def test_devices_new_to_a_shard_are_stored_as_seen_at_once_in_one_item(
    alert_cloud: AlertCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN ten devices the function has not seen yet
    WHEN a batch of one reading each is processed
    THEN the shard's one `seen` item holds the ten, seen now, and the readings took one
    request, as without alerts."""
    now = time.time()
    assert _process(
        alert_cloud.config, [_reading(f"new-{i}", int(now) - 30, 21) for i in range(10)]
    ) == {"batchItemFailures": []}

    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert (line["stored"], line["write_requests"]) == (10, 1)
    ((key, devices),) = _seen(alert_cloud).items()
    assert key == f"{contract.SHARD_KEY_PREFIX}{STREAM_ARN}/{SHARD_ID} {contract.SEEN_KIND}#0"
    assert sorted(devices) == [f"new-{i}" for i in range(10)]
    assert all(now <= seen_at <= time.time() for seen_at in devices.values())


def test_known_devices_are_stored_as_seen_once_per_half_window(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN a function with a 2-second silence window that has stored a device as seen
    WHEN the device sends again at once, then after a second (half the window)
    THEN the first reading leaves the stored time alone, the second updates it."""
    config = replace(alert_cloud.config, silence_window_s=2)
    processor = StreamProcessor(config)
    stored = []
    try:
        for index, pause in enumerate((0.0, 0.2, 1.1)):
            time.sleep(pause)
            reading = _reading("steady-1", int(time.time()) - 30 + index, 21)
            event = {"Records": [kinesis_record(reading, index, arrival=time.time())]}
            assert processor.process(event) == {"batchItemFailures": []}
            ((devices),) = _seen(alert_cloud).values()
            stored.append(devices["steady-1"])
    finally:
        processor.close()

    assert stored[0] == stored[1] < stored[2]


def test_environments_taking_turns_on_a_shard_drop_no_device_seen(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN two execution environments of a function with a 2-second silence window
    WHEN the first sees three devices, the second takes the shard over and sees a fourth,
    and the first takes it back a second later and sees a fifth
    THEN the shard's `seen` items hold all five: neither environment's write dropped a
    device the other saw, so any of them falling silent would still be noticed."""
    config = replace(alert_cloud.config, silence_window_s=2)
    start = int(time.time()) - 300
    first, second = StreamProcessor(config), StreamProcessor(config)
    turns = [
        (first, ["old-0", "old-1", "old-2"], 0.0),
        (second, ["other-1"], 0.0),
        (first, ["late-1"], 1.0),
    ]
    try:
        for index, (environment, devices, pause) in enumerate(turns):
            time.sleep(pause)
            records = [
                kinesis_record(_reading(d, start, 21), 10 * index + i, arrival=time.time())
                for i, d in enumerate(devices)
            ]
            assert environment.process({"Records": records}) == {"batchItemFailures": []}
    finally:
        first.close()
        second.close()

    ((stored),) = _seen(alert_cloud).values()
    assert sorted(stored) == ["late-1", "old-0", "old-1", "old-2", "other-1"]


def test_seen_items_each_stay_under_the_item_limit_and_none_is_left_behind(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN a shard of 6,000 devices with the longest ids a reading may carry
    WHEN their `seen` items are stored, then those of ten devices over them
    THEN the first write takes several items, each under DynamoDB's 400 KB, that together
    hold every device; the second leaves one item, with the ten."""
    table = alert_cloud.config.alert_state_table
    assert table is not None
    state = AlertStateTable(alert_cloud.dynamodb, table, alert_cloud.config.table_name)
    many = {f"{i:06d}".rjust(128, "x"): 1_800_000_000.0 + i for i in range(6000)}
    items = state.save_seen("shard-9", many, 0, time.time() + 3600, Deadline(None))
    texts = seen_texts(many)
    assert items == len(texts) > 1
    assert all(len(text.encode()) < 400 * 1024 - 100 for text in texts)
    stored = _seen(alert_cloud)
    assert {d for devices in stored.values() for d in devices} == set(many)

    few = dict(list(many.items())[:10])
    assert state.save_seen("shard-9", few, items, time.time() + 3600, Deadline(None)) == 1
    assert list(_seen(alert_cloud).values()) == [few]


def test_the_notifier_sends_only_writes_with_an_outbox_and_skips_an_unreadable_one(
    alert_cloud: AlertCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN a device's `seen` write, a state write whose outbox is not one, and a raised
    alert, in one stream batch
    WHEN the notifier gets it
    THEN it sends the one event, reports nothing for retry, and logs the unreadable write."""
    config = alert_cloud.config
    table = config.alert_state_table
    assert table is not None
    alert_cloud.dynamodb.put_item(
        TableName=table,
        Item={
            contract.DEVICE_ID: {"S": "odd-1"},
            contract.STATE_KIND: {"S": contract.ALERTS_KIND},
            contract.STATE_VERSION: {"N": "1"},
            contract.ALERT_OUTBOX: {"S": '{"not": "a list"}'},
        },
    )
    start = int(time.time()) - 300
    assert _process(config, [_reading("hot-2", start, 66)]) == {"batchItemFailures": []}

    records = alert_cloud.stream.new_records()
    kinds = [r["dynamodb"]["Keys"][contract.STATE_KIND]["S"] for r in records]
    assert contract.SEEN_KIND + "#0" in kinds and kinds.count(contract.ALERTS_KIND) == 2
    assert config.alert_bus_name is not None
    notifier = AlertNotifier(config.alert_bus_name, make_client("events", 1))
    answer = notifier.notify(records, Deadline(None))

    assert (answer["batchItemFailures"], answer["events"]) == ([], 1)
    assert "unreadable outbox" in caplog.text
    assert [(e["detail"]["device_id"], e["detail"]["state"]) for e in alert_cloud.events()] == [
        ("hot-2", contract.RAISED)
    ]


def _granted(role: str) -> dict[str, set[str]]:
    """The DynamoDB actions the deployed template grants `role`, by table resource."""
    template = json.loads(render(build_templates(Naming())["streaming"]))
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    granted: dict[str, set[str]] = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        for resource in statement["Resource"]:
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                logical, attribute = resource["Fn::GetAtt"]
                if attribute == "Arn":
                    granted.setdefault(logical, set()).update(
                        a.removeprefix("dynamodb:")
                        for a in statement["Action"]
                        if a.startswith("dynamodb:")
                    )
    return granted


def _recording_client() -> tuple[Any, set[tuple[str, str]]]:
    """A DynamoDB client, and the (table, operation) of every call made through it."""
    client = make_client("dynamodb", 4)
    calls: set[tuple[str, str]] = set()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        for table in [params.get("TableName"), *params.get("RequestItems", {})]:
            if table:
                calls.add((table, model.name))

    client.meta.events.register("provide-client-params.dynamodb", record)
    return client, calls


def test_every_call_the_alert_functions_make_is_one_their_roles_grant(
    alert_cloud: AlertCloud,
) -> None:
    """GIVEN the stream processor and the silence check, each with a client that records
    its calls, and their roles as the streaming template grants them
    WHEN a device raises an alert and clears it beside three quiet ones, and the silence
    check later finds all four silent
    THEN every call each function made on the readings and alert state tables is an action
    its role grants on that table (moto does not check IAM: this is what would be
    refused in AWS)."""
    config = alert_cloud.config
    tables = {config.table_name: "ReadingsTable", config.alert_state_table: "AlertStateTable"}
    start = int(time.time()) - 300
    processor_client, processor_calls = _recording_client()
    processor = StreamProcessor(config, dynamodb=processor_client)
    try:
        for index, temperature in enumerate((70, 20)):
            readings = [_reading("oven-3", start + index, temperature)]
            readings += [_reading(f"quiet-{i}", start + index, 21) for i in range(3)]
            assert processor.process(kinesis_event(readings, time.time())) == {
                "batchItemFailures": []
            }
    finally:
        processor.close()
    check_client, check_calls = _recording_client()
    check = SilenceCheck(config, dynamodb=check_client)
    try:
        counts = check.run(time.time() + config.silence_window_s + 60, Deadline(None))
    finally:
        check.close()

    assert alert_cloud.states("oven-3") == [
        contract.RAISED,
        contract.CLEARED,
        contract.DEVICE_SILENT,
    ]
    assert counts["newly_silent"] == 4
    for role, calls in (("ProcessorRole", processor_calls), ("SilenceCheckRole", check_calls)):
        granted = _granted(role)
        refused = {
            (tables[table], operation)
            for table, operation in calls
            if operation not in granted.get(tables[table], set())
        }
        assert refused == set(), f"{role} would be refused {sorted(refused)}"
    assert {operation for _, operation in processor_calls} >= {"GetItem", "PutItem", "Query"}
