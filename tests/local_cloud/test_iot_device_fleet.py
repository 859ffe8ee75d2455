"""The device fleet simulator: realistic readings, and a run that reconciles downstream."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from local_cloud.iot_rules import RulesEngine
from local_cloud.mqtt_broker import MqttBroker
from local_cloud.ports import free_port
from platform_tools import device_simulator as dc
from stream_processor import contract
from tests.local_cloud import iot_support
from tests.local_cloud.iot_support import IotWorld

world = iot_support.world
engine = iot_support.engine

NOON = 1_700_100_000.0


def test_generated_readings_fit_their_kind():
    """GIVEN a seeded generator with many anomalies and malformed messages
    WHEN thousands of readings are made THEN each kind has the values it promises."""
    gen = dc.ReadingGenerator(5, seed=7, anomaly_share=0.4, malformed_share=0.3)
    seen: dict[str, list[bytes]] = defaultdict(list)
    for i in range(4000):
        kind, payload = gen.reading(gen.devices[i % 5], NOON + i)
        seen[kind].append(payload)

    assert set(seen) == {dc.NORMAL, *dc.ANOMALIES, *dc.MALFORMED}
    for payload in seen[dc.NORMAL]:
        r = json.loads(payload)
        assert -40 < r[contract.TEMPERATURE] < 50 and 20 < r[contract.HUMIDITY] <= 100
    assert all(json.loads(p)[contract.TEMPERATURE] > 50 for p in seen[dc.HEAT_SPIKE])
    assert all(json.loads(p)[contract.HUMIDITY] < 20 for p in seen[dc.DRY_SPELL])
    for payload in seen[dc.SENSOR_FAULT]:
        r = json.loads(payload)
        assert not -40 <= r[contract.TEMPERATURE] <= 125 or not 0 <= r[contract.HUMIDITY] <= 100
    assert all(contract.HUMIDITY not in json.loads(p) for p in seen[dc.MISSING_HUMIDITY])
    for payload in seen[dc.MALFORMED_NOT_JSON] + seen[dc.MALFORMED_TRUNCATED]:
        with pytest.raises(ValueError):
            json.loads(payload)
    assert all(isinstance(json.loads(p), list) for p in seen[dc.MALFORMED_NOT_OBJECT])
    assert all(contract.DEVICE_ID not in json.loads(p) for p in seen[dc.MALFORMED_NO_DEVICE_ID])


def test_each_device_timestamps_are_distinct_and_increasing():
    """GIVEN readings made faster than the clock ticks THEN a device never repeats a time."""
    gen = dc.ReadingGenerator(2, seed=1)
    stamps = [json.loads(gen.reading(gen.devices[0], NOON)[1]) for _ in range(50)]
    times = [s[contract.TIMESTAMP] for s in stamps if isinstance(s, dict) and "timestamp" in s]
    assert times == sorted(set(times))


def test_daily_curve_is_warmer_in_the_afternoon():
    """GIVEN one device WHEN read at 03:00 and 15:00 UTC THEN the afternoon is warmer."""
    gen = dc.ReadingGenerator(1, seed=3, anomaly_share=0.0)
    device = gen.devices[0]
    day = 1_700_006_400  # a UTC midnight
    night = json.loads(gen.reading(device, day + 3 * 3600)[1])
    afternoon = json.loads(gen.reading(device, day + 15 * 3600)[1])
    assert afternoon[contract.TEMPERATURE] > night[contract.TEMPERATURE] + 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"devices": 0},
        {"rate": 0},
        {"duration": -1},
        {"malformed_share": 1.5},
        {"malformed_share": 0.6, "anomaly_share": 0.6},
    ],
)
def test_simulate_rejects_bad_arguments(kwargs: dict):
    """GIVEN an impossible fleet setting THEN a clear ValueError before anything is sent."""
    with pytest.raises(ValueError):
        dc.simulate(**{"port": free_port(), "progress": False, **kwargs})


def test_simulated_fleet_reconciles_with_kinesis_and_error_action(
    world: IotWorld, engine: RulesEngine
):
    """GIVEN the deployed rule shape and a broker WHEN a small fleet runs with malformed
    messages THEN every message is acknowledged, Kinesis holds exactly those with a device
    id, and the error action holds exactly the rest."""
    stream, bucket = world.stream(), world.bucket()
    world.rule("SELECT * FROM 'iot/sensors'", stream=stream, error_bucket=bucket)
    engine.refresh()
    with MqttBroker(engine.submit, port=free_port()) as broker:
        summary = dc.simulate(
            devices=4,
            rate=200.0,
            duration=0.5,
            malformed_share=0.2,
            host=broker.host,
            port=broker.port,
            seed=11,
            progress=False,
        )
    assert engine.flush()

    assert summary.published == 100 and summary.acknowledged == 100
    assert summary.malformed > 0
    records = world.records(stream)
    assert len(records) == summary.with_partition_key
    keys = {r["PartitionKey"] for r in records}
    assert keys == {d.device_id for d in dc.ReadingGenerator(4, seed=11).devices}
    assert len(world.error_messages(bucket)) == summary.published - summary.with_partition_key
