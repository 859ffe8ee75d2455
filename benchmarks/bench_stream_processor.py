"""The stream processor against an idiomatic Powertools handler on a 10,000-record batch.

Both write to the same loopback endpoint (a child process) that answers every
DynamoDB and S3 request after 5 ms, an in-region round trip. Runs are
interleaved so machine noise hits both alike; medians, extremes and the ratio
baseline/handler are printed. `BENCH_PROFILE=1` also prints a CPU profile of
one handler run with its writes on the profiled thread.
"""

from __future__ import annotations

import base64
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from decimal import Decimal

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from pipeline_platform.env_override import overridden
from stream_processor import contract
from stream_processor.aws_clients import make_client
from stream_processor.config import DEFAULT_WRITE_CONCURRENCY, Config
from stream_processor.handler import StreamProcessor
from tests.support.fake_aws import serve_in_subprocess
from tests.support.kinesis_events import kinesis_event

RECORDS = 10_000
ROUND_TRIP_S = 0.005
RUNS = 5
REGION = "ap-southeast-2"
TABLE = "dynamodb-dev-apse2-iotdata-01"
BUCKET = "s3-dev-apse2-quarantine-01"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
}


def realistic_payloads(count: int, seed: int = 7) -> list[bytes]:
    """Mostly valid readings from 200 devices, ~8% alerting, ~3% malformed, a few extras."""
    rng = random.Random(seed)
    payloads = []
    for i in range(count):
        reading = {
            "device_id": f"sensor-{i % 200:03d}",
            "timestamp": 1700100000 + i // 200,
            "temperature": round(rng.uniform(15, 35), 1),
            "humidity": round(rng.uniform(30, 70), 1),
        }
        roll = rng.random()
        if roll < 0.04:
            reading["temperature"] = round(rng.uniform(51, 80), 1)
        elif roll < 0.08:
            reading["humidity"] = round(rng.uniform(5, 19), 1)
        elif roll < 0.10:
            del reading["humidity"]
        elif roll < 0.15:
            reading["pressure"] = rng.randint(990, 1030)
        elif roll < 0.16:
            reading["temperature"] = 150
        elif roll < 0.175:
            payloads.append(b"Invalid JSON Data")
            continue
        elif roll < 0.185:
            del reading["device_id"]
        elif roll < 0.19:
            payloads.append(
                b'{"device_id": "sensor-x", "timestamp": 1700100000, "temperature": NaN}'
            )
            continue
        payloads.append(json.dumps(reading).encode())
    return payloads


# --- the baseline: how a handler is usually written with Lambda Powertools -------------


def powertools_baseline(endpoint_url: str) -> Callable[[dict, object], dict]:
    """A handler in the idiomatic Powertools style, doing the same work as ours.

    BatchProcessor + process_partial_response, json with Decimal, the resource
    layer's Table.batch_writer(), one put_object per quarantined record.
    """
    table = boto3.resource("dynamodb", endpoint_url=endpoint_url).Table(TABLE)
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
    state: dict = {}

    def quarantine(record: KinesisStreamRecord, reason: str, device_id: object = None) -> None:
        line = {
            "reason": reason,
            "detail": reason,
            "device_id": device_id if isinstance(device_id, str) else None,
            "data": record.kinesis.data,
            "sequence_number": record.kinesis.sequence_number,
            "partition_key": record.kinesis.partition_key,
            "approximate_arrival_timestamp": record.kinesis.approximate_arrival_timestamp,
            "event_source_arn": record.event_source_arn,
            "quarantined_at": time.time(),
        }
        s3.put_object(
            Bucket=BUCKET,
            Key=f"quarantine/{record.kinesis.sequence_number}.json",
            Body=json.dumps(line).encode(),
        )

    def record_handler(record: KinesisStreamRecord) -> None:
        try:
            payload = json.loads(record.kinesis.data_as_bytes(), parse_float=Decimal)
        except ValueError:
            return quarantine(record, contract.INVALID_JSON)
        if not isinstance(payload, dict):
            return quarantine(record, contract.NOT_AN_OBJECT)
        device_id = payload.get("device_id")
        if not isinstance(device_id, str) or not device_id:
            return quarantine(record, contract.MISSING_DEVICE_ID)
        timestamp = payload.get("timestamp")
        if not isinstance(timestamp, int | Decimal) or isinstance(timestamp, bool):
            return quarantine(record, contract.INVALID_TIMESTAMP, device_id)
        alerts, flags = [], []
        item = dict(payload)
        for field, low, high in (("temperature", -40, 125), ("humidity", 0, 100)):
            value = payload.get(field)
            if value is None:
                flags.append(f"MISSING_{field.upper()}")
            elif (
                not isinstance(value, int | Decimal)
                or isinstance(value, bool)
                or not Decimal(value).is_finite()
            ):
                return quarantine(record, f"INVALID_{field.upper()}", device_id)
            elif not low <= value <= high:
                flags.append(f"{field.upper()}_OUT_OF_RANGE")
            elif field == "temperature" and value > 50:
                alerts.append("HIGH_TEMPERATURE")
            elif field == "humidity" and value < 20:
                alerts.append("LOW_HUMIDITY")
        now = int(time.time())
        item.update(
            alerts=alerts,
            quality_flags=flags,
            sequence_number=record.kinesis.sequence_number,
            ingested_at=now,
            expires_at=now + 90 * 86400,
        )
        if alerts:
            item["alert_date"] = time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))
        state["writer"].put_item(Item=item)

    def handler(event: dict, context: object) -> dict:
        with table.batch_writer(overwrite_by_pkeys=["device_id", "timestamp"]) as writer:
            state["writer"] = writer
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )

    return handler


# --- measurement ----------------------------------------------------------------------


def timed(handler: Callable[[dict, object], dict], event: dict) -> float:
    """Seconds one invocation takes (its log output swallowed); checks nothing failed."""
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        response = handler(event, None)
        elapsed = time.perf_counter() - started
    assert response == {"batchItemFailures": []}, response
    return elapsed


def our_processor(endpoint_url: str, concurrency: int) -> StreamProcessor:
    """The stream processor wired to the fake endpoint."""
    config = Config(table_name=TABLE, quarantine_bucket=BUCKET, write_concurrency=concurrency)
    pool = concurrency + 1
    return StreamProcessor(
        config,
        dynamodb=make_client("dynamodb", pool, endpoint_url=endpoint_url),
        s3=make_client("s3", pool, endpoint_url=endpoint_url),
    )


def request_building_cost(event: dict) -> tuple[float, float]:
    """Microseconds per item to build a 25-item BatchWriteItem: botocore's serialiser vs ours."""
    from stream_processor.dynamodb_writer import DynamoDbWriter
    from stream_processor.readings import Accepted, classify

    config = Config(table_name=TABLE, quarantine_bucket=BUCKET)
    accepted = []
    for record in event["Records"][:500]:
        data = base64.b64decode(record["kinesis"]["data"])
        outcome = classify(data, "1", "1700100000", "1707876000", config)
        if isinstance(outcome, Accepted):
            accepted.append(outcome)
    chunks = [accepted[i : i + 25] for i in range(0, len(accepted), 25)]
    client = make_client("dynamodb", 1, endpoint_url="http://127.0.0.1:9")
    model = client.meta.service_model.operation_model("BatchWriteItem")
    params = [
        {"RequestItems": {TABLE: [{"PutRequest": {"Item": json.loads(a.item_json)}} for a in c]}}
        for c in chunks
    ]
    started = time.perf_counter()
    for request in params:
        client._serializer.serialize_to_request(request, model)
    botocore_us = (time.perf_counter() - started) / len(accepted) * 1e6
    writer = DynamoDbWriter(client, TABLE, None)
    started = time.perf_counter()
    for chunk in chunks:
        writer._body(chunk)
    prebuilt_us = (time.perf_counter() - started) / len(accepted) * 1e6
    return botocore_us, prebuilt_us


class _InlineExecutor(Executor):
    """Runs each task as it is submitted, on the caller's thread."""

    def submit(self, fn: Callable, /, *args: object, **kwargs: object) -> Future:
        """Run `fn` now; its outcome is in the returned future."""
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def print_cpu_profile(endpoint_url: str, event: dict) -> None:
    """cProfile of one handler run with every write on the profiled thread.

    cProfile sees one thread only; running the writer's tasks inline puts the
    whole CPU cost (validation, signing, HTTP) in one profile. Time blocked on
    the endpoint's 5 ms shows as socket waits: read the CPU entries.
    """
    config = Config(table_name=TABLE, quarantine_bucket=BUCKET, write_concurrency=1)
    processor = StreamProcessor(
        config,
        dynamodb=make_client("dynamodb", 2, endpoint_url=endpoint_url),
        s3=make_client("s3", 2, endpoint_url=endpoint_url),
        executor=_InlineExecutor(),
    )
    timed(processor.process, event)  # warm connections
    profile = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profile.runcall(processor.process, event, None)
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def _summary(name: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    return (
        f"{name:<28} median {median * 1000:8.1f} ms  min {min(samples) * 1000:8.1f}"
        f"  max {max(samples) * 1000:8.1f}  ({median / RECORDS * 1e6:6.1f} us/record)"
    )


def main() -> None:
    """Time both handlers on the same batch, interleaved, and print the comparison."""
    server, endpoint_url = serve_in_subprocess(ROUND_TRIP_S)
    try:
        with overridden(FAKE_CREDENTIALS):
            event = kinesis_event(realistic_payloads(RECORDS))
            print(f"{RECORDS} records, {ROUND_TRIP_S * 1000:.0f} ms per request, {RUNS} runs each")
            ours = our_processor(endpoint_url, DEFAULT_WRITE_CONCURRENCY)
            baseline = powertools_baseline(endpoint_url)
            timed(ours.process, event)  # warm: connections, first-call imports
            timed(baseline, event)
            our_runs, baseline_runs, our_cpu, baseline_cpu = [], [], [], []
            for _ in range(RUNS):
                for handler, runs, cpu in (
                    (ours.process, our_runs, our_cpu),
                    (baseline, baseline_runs, baseline_cpu),
                ):
                    # CPU time of the whole process (every thread): steadier than wall
                    # time when other work shares the machine.
                    started_cpu = time.process_time()
                    runs.append(timed(handler, event))
                    cpu.append(time.process_time() - started_cpu)
            print(_summary("stream_processor", our_runs))
            print(_summary("powertools baseline", baseline_runs))
            print(
                f"CPU median: stream_processor {statistics.median(our_cpu) * 1000:.1f} ms,"
                f" baseline {statistics.median(baseline_cpu) * 1000:.1f} ms"
            )
            ratio = statistics.median(baseline_runs) / statistics.median(our_runs)
            print(f"ratio baseline/handler: {ratio:.1f}x (goal >= 10x)")
            ours.close()

            for concurrency in (8, 16, 32, 64):
                processor = our_processor(endpoint_url, concurrency)
                timed(processor.process, event)
                runs = [timed(processor.process, event) for _ in range(3)]
                print(_summary(f"  WRITE_CONCURRENCY={concurrency}", runs))
                processor.close()

            botocore_us, prebuilt_us = request_building_cost(event)
            print(
                f"request body per item: botocore serializer {botocore_us:.1f} us,"
                f" prebuilt {prebuilt_us:.2f} us"
            )
            if os.environ.get("BENCH_PROFILE"):
                print_cpu_profile(endpoint_url, event)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
