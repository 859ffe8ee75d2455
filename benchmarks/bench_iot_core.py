"""Local IoT Core throughput: the rules engine alone, and devices -> MQTT -> rules -> Kinesis.

Goal: the local path sustains at least 1,000 messages/s on a 2-core machine. Each figure
is the median of several runs; timings on a shared machine are noisy.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
import uuid

import boto3

from local_cloud import defaults
from local_cloud.emulator import Emulator
from local_cloud.iot_rules import InboundMessage, RulesEngine
from local_cloud.mqtt_broker import MqttBroker
from local_cloud.ports import free_port
from platform_tools.device_simulator import simulate

RUNS = 3
ENGINE_MESSAGES = 5000
FLEET_RATE = 2000.0
FLEET_SECONDS = 3.0


def _setup(endpoint: str) -> str:
    """A stream and the deployed rule shape on iot/sensors; returns the stream name."""
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("kinesis", endpoint_url=endpoint).create_stream(StreamName=stream, ShardCount=2)
    iot = boto3.client("iot", endpoint_url=endpoint)
    for rule in iot.list_topic_rules().get("rules", []):
        iot.delete_topic_rule(ruleName=rule["ruleName"])
    iot.create_topic_rule(
        ruleName=f"bench_{uuid.uuid4().hex[:8]}",
        topicRulePayload={
            "sql": "SELECT * FROM 'iot/sensors'",
            "actions": [
                {
                    "kinesis": {
                        "streamName": stream,
                        "partitionKey": "${device_id}",
                        "roleArn": "arn:aws:iam::123456789012:role/bench",
                    }
                }
            ],
        },
    )
    return stream


def bench_engine(endpoint: str) -> float:
    """Messages/s through RulesEngine.process (SQL, template, PutRecord) in one thread."""
    _setup(endpoint)
    engine = RulesEngine(endpoint, defaults.REGION, refresh_interval=60)
    engine.refresh()
    payloads = [
        json.dumps(
            {"device_id": f"sensor-{i % 50:04d}", "timestamp": 1700000000 + i, "temperature": 22}
        ).encode()
        for i in range(ENGINE_MESSAGES)
    ]
    start = time.perf_counter()
    for payload in payloads:
        engine.process(InboundMessage("iot/sensors", payload, "bench"))
    return ENGINE_MESSAGES / (time.perf_counter() - start)


def bench_fleet(endpoint: str) -> tuple[float, float]:
    """(published msgs/s, end-to-end msgs/s into Kinesis) for a fleet over MQTT."""
    _setup(endpoint)
    engine = RulesEngine(endpoint, defaults.REGION, refresh_interval=60).start()
    try:
        with MqttBroker(engine.submit, port=free_port()) as broker:
            start = time.perf_counter()
            summary = simulate(
                devices=50,
                rate=FLEET_RATE,
                duration=FLEET_SECONDS,
                malformed_share=0.0,
                port=broker.port,
                seed=1,
                progress=False,
            )
            engine.flush(60)
            elapsed = time.perf_counter() - start
        delivered = engine.stats["delivered"]
        assert delivered == summary.published, (delivered, summary.as_dict())
        return summary.achieved_rate, delivered / elapsed
    finally:
        engine.stop()


def main() -> None:
    """Print medians of each measurement."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(defaults.CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", defaults.REGION)
    emulator = Emulator(port=free_port()).start()
    try:
        endpoint = emulator.endpoint_url
        engine_rates = [bench_engine(endpoint) for _ in range(RUNS)]
        fleet = [bench_fleet(endpoint) for _ in range(RUNS)]
    finally:
        emulator.stop()
    print(
        f"rules engine alone (process, PutRecord in-process): "
        f"median {statistics.median(engine_rates):,.0f} msg/s over {RUNS} runs of "
        f"{ENGINE_MESSAGES} ({', '.join(f'{r:,.0f}' for r in engine_rates)})"
    )
    published = [p for p, _ in fleet]
    delivered = [d for _, d in fleet]
    print(
        f"fleet over MQTT, target {FLEET_RATE:,.0f} msg/s for {FLEET_SECONDS}s: published "
        f"median {statistics.median(published):,.0f} msg/s; devices->Kinesis end to end "
        f"median {statistics.median(delivered):,.0f} msg/s "
        f"({', '.join(f'{d:,.0f}' for d in delivered)})"
    )


if __name__ == "__main__":
    main()
