"""Event source mapping runner: put-to-invoke latency and throughput at 1,000 records/s.

Puts records into a two-shard stream over HTTP at a steady rate (PutRecords,
100 per call every 0.1 s) while the runner delivers them to a handler that only
notes when each record arrived. Compares reading moto's in-process Kinesis
objects ("backend") with the Kinesis API over HTTP ("http"), whose GetRecords
scans the shard from its start on every call. Medians of several runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import boto3

from benchmarks.mapped_stream import deploy_mapped_stream
from local_cloud import defaults
from local_cloud.emulator import Emulator
from local_cloud.esm_runner import EventSourceMappingRunner
from local_cloud.ports import free_port

RATE = 1000  # records per second
SECONDS = 10
RUNS = 3
_LATENCIES: list[float] = []


def record_handler(event, context):
    """Benchmark handler: note put-to-invoke latency of every record."""
    now = time.time()
    # The runner loads a private copy of this module, as a fresh sandbox would: note the
    # latencies in the instance the benchmark runs in.
    latencies = sys.modules[__name__]._LATENCIES
    latencies.extend(now - r["kinesis"]["approximateArrivalTimestamp"] for r in event["Records"])
    return {"batchItemFailures": []}


def _run_once(endpoint: str, source: str) -> dict[str, float]:
    name, arn = deploy_mapped_stream(
        endpoint, "benchmarks.bench_esm_runner.record_handler", shards=2
    )
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="ap-southeast-2")
    _LATENCIES.clear()
    with tempfile.TemporaryDirectory() as state:
        runner = EventSourceMappingRunner(
            endpoint,
            state_dir=state,
            record_source=source,
            mapping_filter=lambda m: m.stream_arn == arn,
        ).start()
        total = RATE * SECONDS
        started = time.monotonic()
        sent = 0
        while sent < total:
            batch = [
                {"Data": b'{"device_id":"d","timestamp":1}', "PartitionKey": f"d{(sent + i) % 50}"}
                for i in range(100)
            ]
            kinesis.put_records(StreamName=name, Records=batch)
            sent += len(batch)
            pause = started + sent / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        put_done = time.monotonic()
        runner.wait_until_drained(120)
        elapsed = time.monotonic() - started
        runner.stop()
    lat = sorted(_LATENCIES)
    return {
        "put_rate": total / (put_done - started),
        "delivered_rate": len(lat) / elapsed,
        "p50_s": lat[len(lat) // 2],
        "p99_s": lat[int(len(lat) * 0.99)],
    }


def main() -> None:
    """Run both record sources RUNS times and print medians."""
    os.environ.update(defaults.CREDENTIALS)
    emulator = Emulator(port=free_port()).start()
    try:
        for source in ("backend", "http"):
            runs = [_run_once(emulator.endpoint_url, source) for _ in range(RUNS)]
            medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{source:8s} {RATE * SECONDS} records at {RATE}/s, median of {RUNS}: "
                f"put {medians['put_rate']:.0f}/s, delivered {medians['delivered_rate']:.0f}/s, "
                f"put-to-invoke p50 {medians['p50_s'] * 1000:.0f} ms, "
                f"p99 {medians['p99_s'] * 1000:.0f} ms"
            )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
