"""Publish sensor readings the way devices do: one message, or a whole simulated fleet.

- :func:`publish` sends one payload over MQTT (paho-mqtt), waiting for the broker's ack
  at QoS 1.
- :func:`publish_via_iot_data` sends one payload through the IoT Data API, like
  ``aws iot-data publish`` in the project's original test instructions.
- :func:`simulate` runs a fleet of devices over MQTT at a steady rate: daily temperature
  and humidity curves per device, occasional anomalies and a share of malformed payloads,
  and returns what it published by kind so a run can be reconciled downstream. Stopped
  early (Ctrl-C, SIGTERM, or its `stop` event), it still returns what it had published.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import paho.mqtt.client as mqtt

from local_cloud import defaults
from platform_tools.stopping import StopRequested
from stream_processor import contract

# Reading kinds the simulator produces. Anomalies are chosen to trip the stream
# processor's default thresholds (alert above 50 C, below 20 % RH) while staying inside
# the sensor range; sensor faults are physically impossible values.
NORMAL = "normal"
HEAT_SPIKE = "heat_spike"
DRY_SPELL = "dry_spell"
SENSOR_FAULT = "sensor_fault"
MISSING_HUMIDITY = "missing_humidity"
ANOMALIES = (HEAT_SPIKE, DRY_SPELL, SENSOR_FAULT, MISSING_HUMIDITY)

MALFORMED_NOT_JSON = "malformed_not_json"
MALFORMED_TRUNCATED = "malformed_truncated"
MALFORMED_NOT_OBJECT = "malformed_not_object"
MALFORMED_NO_DEVICE_ID = "malformed_no_device_id"
MALFORMED_BAD_TIMESTAMP = "malformed_bad_timestamp"
MALFORMED = (
    MALFORMED_NOT_JSON,
    MALFORMED_TRUNCATED,
    MALFORMED_NOT_OBJECT,
    MALFORMED_NO_DEVICE_ID,
    MALFORMED_BAD_TIMESTAMP,
)
#: Malformed kinds that carry no ``device_id``: with the deployed rule's
#: ``${device_id}`` partition key they go to the rule's error action, not to Kinesis.
WITHOUT_PARTITION_KEY = frozenset(
    {MALFORMED_NOT_JSON, MALFORMED_TRUNCATED, MALFORMED_NOT_OBJECT, MALFORMED_NO_DEVICE_ID}
)


class PublishError(RuntimeError):
    """A message could not be delivered to the broker."""


#: How long a broker may take to accept a connection (CONNACK); a busy local one takes
#: milliseconds, so this only bounds the wait on a port where something else listens.
CONNECT_TIMEOUT_S = 5.0
#: After a stop request, how long the acknowledgements of messages already sent may take.
_ACK_GRACE_AFTER_STOP_S = 2.0
_NO_BROKER_HINT = (
    "start the local cloud (`pipeline-platform up`) or pass --host/--port of a running broker"
)


# --- One message -------------------------------------------------------------------


def _new_client(client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(200)
    return client


def _connect(client: mqtt.Client, host: str, port: int, timeout: float) -> None:
    """Connect and wait for the broker's CONNACK; fail at once when the connection is refused,
    closed, or answered by something that is not an MQTT broker."""
    answered = threading.Event()
    failure: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, *args: Any):
        if reason.is_failure:
            failure.append(f"the broker refused the connection ({reason})")
        answered.set()

    def on_disconnect(client: mqtt.Client, userdata: Any, *args: Any) -> None:
        if not answered.is_set():
            failure.append("the connection closed before an MQTT CONNACK")
            answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port)
    except OSError as exc:
        raise PublishError(
            f"no MQTT broker answers at {host}:{port} ({exc}); {_NO_BROKER_HINT}"
        ) from exc
    client.loop_start()
    if not answered.wait(timeout) or failure:
        client.loop_stop()
        why = failure[0] if failure else f"no MQTT CONNACK within {timeout:g} s"
        raise PublishError(
            f"{host}:{port} is not an MQTT broker that accepts this client: {why}; "
            f"{_NO_BROKER_HINT}"
        )


def publish(
    topic: str,
    payload: bytes,
    *,
    host: str = defaults.HOST,
    port: int = defaults.MQTT_PORT,
    qos: int = 1,
    client_id: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Publish one payload over MQTT; at QoS 1 return only once the broker acknowledged it."""
    client = _new_client(client_id or f"publisher-{uuid.uuid4().hex[:12]}")
    _connect(client, host, port, min(timeout, CONNECT_TIMEOUT_S))
    try:
        info = client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise PublishError(f"broker at {host}:{port} did not acknowledge the message")
    finally:
        client.disconnect()
        client.loop_stop()


def publish_via_iot_data(
    topic: str,
    payload: bytes,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    qos: int = 1,
) -> None:
    """Publish one payload through the IoT Data API (AWS, or the local cloud's endpoint)."""
    client = boto3.client("iot-data", endpoint_url=endpoint_url, region_name=region)
    client.publish(topic=topic, qos=qos, payload=payload)


# --- A fleet -----------------------------------------------------------------------


@dataclass
class Device:
    """One simulated device: its id and its offsets from the fleet's daily curves."""

    device_id: str
    temperature_offset: float
    humidity_offset: float
    phase_hours: float
    last_timestamp: float = 0.0

    def next_timestamp(self, now: float) -> float:
        """Epoch seconds (ms precision), strictly after this device's previous reading."""
        stamp = max(round(now, 3), round(self.last_timestamp + 0.001, 3))
        self.last_timestamp = stamp
        return stamp


def _daily(now: float, phase_hours: float) -> float:
    """-1..1 over the day, warmest mid-afternoon."""
    hour = (now / 3600.0 + phase_hours) % 24.0
    return math.sin(2 * math.pi * (hour - 9.0) / 24.0)


class ReadingGenerator:
    """Makes the payloads of a fleet: realistic curves, anomalies and malformed messages."""

    def __init__(
        self,
        devices: int,
        *,
        seed: int | None = None,
        anomaly_share: float = 0.05,
        malformed_share: float = 0.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.anomaly_share = anomaly_share
        self.malformed_share = malformed_share
        self.devices = [
            Device(
                device_id=device_id(n),
                temperature_offset=self.rng.gauss(0.0, 2.0),
                humidity_offset=self.rng.uniform(-8.0, 8.0),
                phase_hours=self.rng.uniform(-1.0, 1.0),
            )
            for n in range(1, devices + 1)
        ]

    def _kind(self) -> str:
        draw = self.rng.random()
        if draw < self.malformed_share:
            return self.rng.choice(MALFORMED)
        if draw < self.malformed_share + self.anomaly_share:
            return self.rng.choice(ANOMALIES)
        return NORMAL

    def reading(self, device: Device, now: float) -> tuple[str, bytes]:
        """The next message of ``device`` at wall-clock ``now``: (kind, payload bytes)."""
        kind = self._kind()
        curve = _daily(now, device.phase_hours)
        temperature = 22.0 + 6.0 * curve + device.temperature_offset + self.rng.gauss(0, 0.3)
        humidity = 55.0 - 15.0 * curve + device.humidity_offset + self.rng.gauss(0, 1.0)
        humidity = min(max(humidity, 25.0), 95.0)  # a normal day never trips the alert
        reading: dict[str, Any] = {
            contract.DEVICE_ID: device.device_id,
            contract.TIMESTAMP: device.next_timestamp(now),
            contract.TEMPERATURE: round(temperature, 2),
            contract.HUMIDITY: round(humidity, 2),
        }
        if kind == HEAT_SPIKE:
            reading[contract.TEMPERATURE] = round(self.rng.uniform(55.0, 90.0), 2)
        elif kind == DRY_SPELL:
            reading[contract.HUMIDITY] = round(self.rng.uniform(3.0, 15.0), 2)
        elif kind == SENSOR_FAULT:
            field_name, value = self.rng.choice(
                [
                    (contract.TEMPERATURE, self.rng.uniform(130.0, 200.0)),
                    (contract.TEMPERATURE, self.rng.uniform(-80.0, -45.0)),
                    (contract.HUMIDITY, self.rng.uniform(-10.0, -1.0)),
                    (contract.HUMIDITY, self.rng.uniform(101.0, 120.0)),
                ]
            )
            reading[field_name] = round(value, 2)
        elif kind == MISSING_HUMIDITY:
            del reading[contract.HUMIDITY]
        elif kind in MALFORMED:
            return kind, self._malformed(kind, reading)
        return kind, json.dumps(reading).encode()

    def _malformed(self, kind: str, reading: dict[str, Any]) -> bytes:
        if kind == MALFORMED_NOT_JSON:
            return b"Invalid JSON Data"
        if kind == MALFORMED_TRUNCATED:
            text = json.dumps(reading)
            return text[: len(text) // 2].encode()
        if kind == MALFORMED_NOT_OBJECT:
            return json.dumps([reading]).encode()
        if kind == MALFORMED_NO_DEVICE_ID:
            del reading[contract.DEVICE_ID]
            return json.dumps(reading).encode()
        reading[contract.TIMESTAMP] = "sometime yesterday"
        return json.dumps(reading).encode()


def device_id(n: int) -> str:
    """The id of the fleet's `n`-th device (from 1), e.g. `sensor-0007`."""
    return f"sensor-{n:04d}"


@dataclass
class SimulationSummary:
    """What a simulation published: counts by kind, acknowledgements, achieved rate."""

    devices: int
    target_rate: float
    duration_s: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0
    #: Stopped before its duration was up (Ctrl-C, SIGTERM or its stop event).
    interrupted: bool = False

    @property
    def published(self) -> int:
        """Messages handed to the broker."""
        return sum(self.by_kind.values())

    @property
    def malformed(self) -> int:
        """Malformed messages published."""
        return sum(n for kind, n in self.by_kind.items() if kind in MALFORMED)

    @property
    def with_partition_key(self) -> int:
        """Messages carrying a ``device_id``: what a ``${device_id}`` rule puts in Kinesis."""
        return sum(n for kind, n in self.by_kind.items() if kind not in WITHOUT_PARTITION_KEY)

    @property
    def achieved_rate(self) -> float:
        """Messages per second actually published."""
        return self.published / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view for the CLI and the demo."""
        return {
            "devices": self.devices,
            "target_rate": self.target_rate,
            "duration_s": round(self.duration_s, 3),
            "published": self.published,
            "acknowledged": self.acknowledged,
            "achieved_rate": round(self.achieved_rate, 1),
            "malformed": self.malformed,
            "with_partition_key": self.with_partition_key,
            "by_kind": dict(sorted(self.by_kind.items())),
            "interrupted": self.interrupted,
        }


class _AckCounter:
    """Counts PUBACKs across the clients' network threads."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def on_publish(self, client: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
        with self._lock:
            self.count += 1


class _Progress:
    """One updating line on stderr, at most a few times a second."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.next_at = 0.0

    def update(self, summary: SimulationSummary, elapsed: float, final: bool = False) -> None:
        if not self.enabled or (not final and elapsed < self.next_at):
            return
        self.next_at = elapsed + 0.25
        rate = summary.published / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(
            f"\rpublished {summary.published}/{self.total}  acked {summary.acknowledged}  "
            f"{rate:7.1f} msg/s  malformed {summary.malformed}  {elapsed:5.1f}s"
        )
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def simulate(
    devices: int = 10,
    rate: float = 100.0,
    duration: float = 10.0,
    malformed_share: float = 0.02,
    host: str = defaults.HOST,
    port: int = defaults.MQTT_PORT,
    seed: int | None = None,
    *,
    topic: str = defaults.TOPIC,
    anomaly_share: float = 0.05,
    clients: int = 4,
    progress: bool = True,
    ack_timeout: float = 30.0,
    clock: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
    mute_after: dict[str, float] | None = None,
) -> SimulationSummary:
    """Run a fleet of ``devices`` publishing ``rate`` messages/s in total for ``duration`` s.

    Messages go round-robin over the devices, at QoS 1, over ``clients`` MQTT
    connections (a few connections sustain far more than one thread per device would).
    Sending is scheduled by time, not by sleeping after each send, so the rate does not
    drift; when the publisher falls behind it catches up without sleeping. Returns the
    counts by kind once every message has been acknowledged (or ``ack_timeout`` passed).

    ``stop`` being set, or Ctrl-C / SIGTERM (``StopRequested``) while sending, ends the
    sending early: the summary then says ``interrupted`` and counts what was sent, and the
    acknowledgements of those messages are awaited for two seconds at most.

    ``mute_after`` maps a device id to the second of the run from which that device sends
    nothing (its turns are skipped): a device falling silent while the fleet goes on.
    """
    if devices < 1:
        raise ValueError(f"devices must be at least 1, got {devices}")
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration}")
    if not 0.0 <= malformed_share <= 1.0 or not 0.0 <= anomaly_share <= 1.0 - malformed_share:
        raise ValueError(
            "malformed_share and anomaly_share must be shares between 0 and 1 that add up "
            f"to at most 1, got {malformed_share} and {anomaly_share}"
        )
    generator = ReadingGenerator(
        devices, seed=seed, anomaly_share=anomaly_share, malformed_share=malformed_share
    )
    total = max(1, round(rate * duration))
    summary = SimulationSummary(devices=devices, target_rate=rate)
    acks = _AckCounter()

    prefix = f"simulator-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pool = [_new_client(f"{prefix}-{k}") for k in range(max(1, min(clients, devices)))]
    for client in pool:
        client.on_publish = acks.on_publish
    connected: list[mqtt.Client] = []
    reporter = _Progress(progress, total)
    try:
        for client in pool:
            _connect(client, host, port, timeout=CONNECT_TIMEOUT_S)
            connected.append(client)
        start = time.monotonic()
        try:
            for i in range(total):
                delay = start + i / rate - time.monotonic()
                if stop is not None and stop.wait(max(delay, 0.0)):
                    summary.interrupted = True
                    break
                if stop is None and delay > 0:
                    time.sleep(delay)
                device = generator.devices[i % devices]
                muted = (mute_after or {}).get(device.device_id)
                if muted is not None and time.monotonic() - start >= muted:
                    continue
                kind, payload = generator.reading(device, clock())
                pool[i % len(pool)].publish(topic, payload, qos=1)
                summary.by_kind[kind] += 1
                summary.acknowledged = acks.count
                reporter.update(summary, time.monotonic() - start)
        except (StopRequested, KeyboardInterrupt):
            summary.interrupted = True
        summary.duration_s = time.monotonic() - start
        grace = min(ack_timeout, _ACK_GRACE_AFTER_STOP_S) if summary.interrupted else ack_timeout
        deadline = time.monotonic() + grace
        while acks.count < summary.published and time.monotonic() < deadline:
            time.sleep(0.01)
        summary.acknowledged = acks.count
        reporter.update(summary, time.monotonic() - start, final=True)
    finally:
        for client in connected:
            client.disconnect()
            client.loop_stop()
    return summary
