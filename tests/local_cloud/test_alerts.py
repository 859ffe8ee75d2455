"""Alert notifications end to end on the local cloud: readings published over MQTT, the
deployed function and silence check, the bus, the rule and the alert topic, with an SQS
queue subscribed to the topic as a person's e-mail or a program would be."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cloudformation.outputs import StreamingOutput
from local_cloud.cloud import LocalCloud
from local_cloud.ports import free_port
from platform_tools import device_simulator
from stream_processor import contract
from stream_processor.config import load_config
from stream_processor.handler import StreamProcessor
from tests.platform_tools.cli_process import CliProcess, clean_environ
from tests.support.kinesis_events import kinesis_event

pytestmark = pytest.mark.integration

ENV = "alerts"
#: Short enough for a test to see a device fall silent; the check runs every second.
SILENCE_WINDOW_S = 4
SCHEDULE_EVERY_S = 1.0
#: How long a test waits for a notification before it concludes none is coming.
SETTLE_S = 3.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A local cloud whose stack has a short silence window and runs the check every second."""
    local = LocalCloud(
        state_dir=tmp_path_factory.mktemp("platform"),
        aws_port=free_port(),
        mqtt_port=free_port(),
        env=ENV,
        persist=False,
        stack_parameters={"streaming": {"SilenceWindowSeconds": str(SILENCE_WINDOW_S)}},
        schedule_every=SCHEDULE_EVERY_S,
    )
    local.start()
    yield local
    local.stop()


class Inbox:
    """An SQS queue subscribed to the alert topic: every notification it received."""

    def __init__(self, cloud: LocalCloud) -> None:
        endpoints = cloud.endpoints
        assert endpoints is not None
        self.sqs = boto3.client("sqs", endpoint_url=endpoints.aws, region_name=endpoints.region)
        sns = boto3.client("sns", endpoint_url=endpoints.aws, region_name=endpoints.region)
        self.url = self.sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=endpoints.output("streaming", StreamingOutput.ALERT_TOPIC_ARN),
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        self.messages: list[dict[str, Any]] = []

    def _receive(self) -> None:
        answer = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in answer.get("Messages", []):
            self.messages.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def alerts(self, device_id: str, *states: str) -> list[dict[str, Any]]:
        """The alert details received so far for one device (of `states`, if given)."""
        self._receive()
        found = [m[contract.NOTIFICATION_ALERT] for m in self.messages]
        return [
            a for a in found if a["device_id"] == device_id and (not states or a["state"] in states)
        ]

    def wait_for(self, device_id: str, state: str, count: int = 1, timeout: float = 30.0) -> None:
        """Until `count` notifications of `state` for the device arrived (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.alerts(device_id, state)) < count:
            assert time.monotonic() < deadline, f"no {state} for {device_id} within {timeout}s"

    def settle(self) -> None:
        """Receive for a while longer: what has not arrived by then is not coming."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            self._receive()


@pytest.fixture
def inbox(cloud: LocalCloud) -> Inbox:
    """A fresh queue subscribed to the alert topic."""
    return Inbox(cloud)


def _device() -> str:
    return f"sensor-{uuid.uuid4().hex[:10]}"


def _publish(cloud: LocalCloud, readings: list[dict[str, Any]]) -> None:
    """Publish readings over MQTT as devices do, in order, and wait until they are processed."""
    endpoints = cloud.endpoints
    assert endpoints is not None
    for reading in readings:
        device_simulator.publish(
            "iot/sensors",
            json.dumps(reading).encode(),
            host=endpoints.mqtt_host,
            port=endpoints.mqtt_port,
        )
    cloud.wait_until_drained(timeout=60)


def _reading(device: str, timestamp: float, temperature: Any, humidity: Any = 50) -> dict:
    return {
        "device_id": device,
        "timestamp": timestamp,
        "temperature": temperature,
        "humidity": humidity,
    }


def test_a_device_crossing_the_threshold_and_returning_raises_once_and_clears_once(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN a device whose temperature rises above 50 C for three readings, then falls back
    WHEN its readings are processed
    THEN one RAISED (with the value, threshold and time of the first alerting reading) and
    one CLEARED arrive, in that order, each a sentence and a parseable JSON body."""
    device, start = _device(), int(time.time()) - 600
    temperatures = [22, 55, 57, 56, 45, 30]
    _publish(cloud, [_reading(device, start + 60 * i, t) for i, t in enumerate(temperatures)])
    inbox.wait_for(device, contract.CLEARED)
    inbox.settle()

    alerts = inbox.alerts(device, contract.RAISED, contract.CLEARED)
    assert [(a["code"], a["state"]) for a in alerts] == [
        (contract.HIGH_TEMPERATURE, contract.RAISED),
        (contract.HIGH_TEMPERATURE, contract.CLEARED),
    ]
    raised, cleared = alerts
    assert (raised["value"], raised["threshold"]) == (55, 50)
    assert raised["reading_timestamp"] == start + 60
    assert (cleared["value"], cleared["clear_level"]) == (45, 48)
    assert cleared["since"] == raised["reading_time"]  # when the alert began
    message = next(m for m in inbox.messages if m[contract.NOTIFICATION_ALERT] == raised)
    assert message[contract.NOTIFICATION_MESSAGE] == raised["message"]
    assert message[contract.NOTIFICATION_MESSAGE].startswith(f"{device}: HIGH_TEMPERATURE raised")


def test_values_hovering_at_the_threshold_raise_once_and_do_not_flap(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN a temperature hovering around 50 C, never back to the 48 C clear level
    WHEN its readings are processed
    THEN one RAISED arrives and no CLEARED."""
    device, start = _device(), int(time.time()) - 600
    hovering = [49.6, 50.4, 49.8, 50.3, 49.1, 50.6, 48.5, 50.2]
    _publish(cloud, [_reading(device, start + 60 * i, t) for i, t in enumerate(hovering)])
    inbox.wait_for(device, contract.RAISED)
    inbox.settle()

    alerts = inbox.alerts(device, contract.RAISED, contract.CLEARED)
    assert [a["state"] for a in alerts] == [contract.RAISED]
    assert alerts[0]["value"] == 50.4


def test_a_late_alerting_reading_after_a_clear_raises_nothing(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN a device that raised and cleared, then sent more normal readings
    WHEN an alerting reading dated before its newest one arrives late (buffered), twice
    THEN nothing is raised again: state changes follow reading time."""
    device, start = _device(), int(time.time()) - 900
    _publish(
        cloud,
        [
            _reading(device, start, 56),
            _reading(device, start + 120, 40),
            _reading(device, start + 240, 41),
        ],
    )
    inbox.wait_for(device, contract.CLEARED)
    _publish(cloud, [_reading(device, start + 60, 60)])  # older than the clearing reading
    _publish(cloud, [_reading(device, start + 180, 61)])  # after the clear, before the newest
    inbox.settle()

    assert [a["state"] for a in inbox.alerts(device, contract.RAISED, contract.CLEARED)] == [
        contract.RAISED,
        contract.CLEARED,
    ]


def test_a_batch_delivered_again_sends_no_notification_twice(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN the deployed function's settings and a batch that raises and clears an alert
    WHEN Lambda delivers the batch, then its second half again (bisection), then the whole
    batch again (a retry)
    THEN one RAISED and one CLEARED arrive, however often the batch came."""
    endpoints = cloud.endpoints
    assert endpoints is not None
    functions = boto3.client("lambda", endpoint_url=endpoints.aws, region_name=endpoints.region)
    settings = functions.get_function_configuration(
        FunctionName=endpoints.output("streaming", StreamingOutput.FUNCTION_NAME)
    )["Environment"]["Variables"]
    processor = StreamProcessor(load_config({k: str(v) for k, v in settings.items()}))
    device, now = _device(), time.time()
    start = int(now) - 600
    event = kinesis_event(
        [_reading(device, start + 60 * i, t) for i, t in enumerate([21, 58, 59, 44])],
        arrival=now,
    )
    second_half = {"Records": event["Records"][2:]}
    try:
        for delivery in (event, second_half, event):
            assert processor.process(delivery) == {"batchItemFailures": []}
    finally:
        processor.close()
    inbox.wait_for(device, contract.CLEARED)
    inbox.settle()

    # Its silence (the window is seconds long here) is another matter.
    alerts = inbox.alerts(device, contract.RAISED, contract.CLEARED, contract.REMINDER)
    assert [a["state"] for a in alerts] == [contract.RAISED, contract.CLEARED]


def test_two_devices_alerting_at_once_raise_one_notification_each(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN two devices whose readings alert in the same batch, one hot, one dry, each for
    several readings
    WHEN the batch is processed
    THEN each device gets exactly one RAISED, for its own code."""
    hot, dry, start = _device(), _device(), int(time.time()) - 600
    readings = []
    for i in range(4):
        readings.append(_reading(hot, start + 60 * i, 70 + i))
        readings.append(_reading(dry, start + 60 * i, 21, humidity=10 - i))
    _publish(cloud, readings)
    inbox.wait_for(hot, contract.RAISED)
    inbox.wait_for(dry, contract.RAISED)
    inbox.settle()

    assert [a["code"] for a in inbox.alerts(hot, contract.RAISED)] == [contract.HIGH_TEMPERATURE]
    assert [a["code"] for a in inbox.alerts(dry, contract.RAISED)] == [contract.LOW_HUMIDITY]


def test_a_device_falling_silent_is_announced_once_and_again_when_it_comes_back(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN a device that sends one reading and then nothing, while another keeps sending
    WHEN the silence window passes (the check runs every second)
    THEN the silent device gets one DEVICE_SILENT, not before the window ended, and the
    talking one none; its next reading brings one DEVICE_BACK."""
    quiet, talking = _device(), _device()
    _publish(
        cloud, [_reading(quiet, int(time.time()), 21), _reading(talking, int(time.time()), 21)]
    )
    last_seen = time.time()
    deadline = time.monotonic() + SILENCE_WINDOW_S + 20
    while not inbox.alerts(quiet, contract.DEVICE_SILENT):
        assert time.monotonic() < deadline, "the silent device was never announced"
        _publish(cloud, [_reading(talking, int(time.time()), 21)])
    announced = time.time()
    for _ in range(3):  # several more checks run while the other device keeps talking
        _publish(cloud, [_reading(talking, int(time.time()), 21)])
        inbox.alerts(quiet)

    (silent,) = inbox.alerts(quiet, contract.DEVICE_SILENT)
    assert silent["code"] == contract.DEVICE_SILENT
    assert silent["silence_window_seconds"] == SILENCE_WINDOW_S
    # Silent since the reading was stored, and announced only once the window had passed.
    assert silent["since_timestamp"] <= last_seen
    assert announced - silent["since_timestamp"] >= SILENCE_WINDOW_S
    assert inbox.alerts(talking, contract.DEVICE_SILENT) == []

    _publish(cloud, [_reading(quiet, int(time.time()), 22)])
    inbox.wait_for(quiet, contract.DEVICE_BACK)
    (back,) = inbox.alerts(quiet, contract.DEVICE_BACK)
    assert back["since"] == silent["since"]
    assert back["message"].startswith(f"{quiet} is back")


def test_quarantined_and_out_of_range_readings_raise_nothing(
    cloud: LocalCloud, inbox: Inbox
) -> None:
    """GIVEN readings that alert only by values the sensor cannot read (150 C, -5 %RH) and
    payloads quarantined for their types
    WHEN they are processed
    THEN no alert is raised for either device, and the quarantined one is never even
    announced silent (it never sent a reading)."""
    flagged, broken, start = _device(), _device(), int(time.time()) - 600
    _publish(
        cloud,
        [
            _reading(flagged, start, 150, humidity=30),
            _reading(flagged, start + 60, 25, humidity=-5),
            _reading(broken, start, "hot", humidity=10),
            _reading(broken, start + 60, True, humidity=5),
        ],
    )
    inbox.settle()
    time.sleep(SILENCE_WINDOW_S)
    inbox.settle()

    assert inbox.alerts(flagged, contract.RAISED, contract.CLEARED, contract.REMINDER) == []
    assert inbox.alerts(broken) == []


def test_alerts_tail_prints_each_notification_as_it_arrives_and_cleans_up(
    cloud: LocalCloud,
) -> None:
    """GIVEN `pipeline-platform alerts tail` running against the local cloud
    WHEN a device raises and clears an alert, and the tail is then stopped with Ctrl-C
    THEN it printed one line for each, the state and the sentence, and it removed its queue
    and its subscription."""
    endpoints = cloud.endpoints
    assert endpoints is not None
    sqs = boto3.client("sqs", endpoint_url=endpoints.aws, region_name=endpoints.region)
    sns = boto3.client("sns", endpoint_url=endpoints.aws, region_name=endpoints.region)
    topic = endpoints.output("streaming", StreamingOutput.ALERT_TOPIC_ARN)
    subscriptions = len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"])
    tail = CliProcess.start(
        "alerts", "tail", "--env", ENV, "--endpoint-url", endpoints.aws, env=clean_environ()
    )
    try:
        tail.wait_for_line("tailing the alert topic", timeout=60)
        device, start = _device(), int(time.time()) - 600
        _publish(cloud, [_reading(device, start, 66), _reading(device, start + 60, 30)])
        tail.wait_for_line(f"{device}: HIGH_TEMPERATURE cleared", timeout=30)
        code = tail.signal_and_wait(signal.SIGINT, timeout=30)
    finally:
        tail.kill()

    printed = [line for line in tail.lines if device in line]
    assert [line.split()[1] for line in printed] == [contract.RAISED, contract.CLEARED]
    assert printed[0].endswith(
        "crossed the threshold of 50 C (reading of "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))})."
    )
    assert code == 130
    queues = sqs.list_queues(QueueNamePrefix="sqs-alerts-").get("QueueUrls", [])
    assert [q for q in queues if "alertstail" in q] == []
    after = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert len(after) == subscriptions
