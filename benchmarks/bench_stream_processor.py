"""The stream processor against a careful Powertools handler, at 100, 1,000 and 10,000 records.

Both write to the same loopback endpoint (a child process) that answers every
DynamoDB and S3 request after 5 ms, an in-region round trip. The baseline is
the handler a careful engineer writes with Lambda Powertools: BatchProcessor,
json with Decimal, the resource layer's `Table.batch_writer()`, the same
classification as ours, and ONE quarantine object per batch.

Runs are interleaved (ours, baseline, ours, ...) so machine noise hits both
alike; the table shows medians of wall and CPU time (CPU of the whole process,
every thread) and the ratio of the medians per size. Every request of ours goes
through botocore's client API: a hook on the clients' `before-send` event (where
moto's mock answers) counts them and the count is checked against the
handler's own log line.

Then: the handler alone over a range of batch sizes (the cost per record that
chooses the stack's BatchSize); the latency a batching window adds, through the
local cloud's event source mapping runner; and the CPU botocore spends per
BatchWriteItem with dict items against pre-encoded ones, short-circuited at
`before-send` so no network is involved. `BENCH_PROFILE=1` also prints a CPU profile of one
10,000-record run with its writes on the profiled thread.
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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from decimal import Decimal
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)
from botocore.awsrequest import AWSResponse

from benchmarks.mapped_stream import deploy_mapped_stream
from local_cloud import defaults
from local_cloud.emulator import Emulator
from local_cloud.esm_runner import EventSourceMappingRunner
from local_cloud.ports import free_port
from pipeline_platform.env_override import overridden
from stream_processor import contract, encoded_requests
from stream_processor.aws_clients import make_client
from stream_processor.config import (
    DEFAULT_EARLIEST_TIMESTAMP,
    DEFAULT_MAX_CLOCK_SKEW_S,
    DEFAULT_WRITE_CONCURRENCY,
    Config,
)
from stream_processor.encoded_requests import EncodedItem
from stream_processor.handler import StreamProcessor
from stream_processor.readings import Accepted, classify
from tests.support.fake_aws import serve_in_subprocess
from tests.support.kinesis_events import ARRIVAL, kinesis_event

SIZES = (100, 1_000, 10_000)
#: Rounds over every size; within a round, small sizes repeat so each gets enough samples.
ROUNDS = 5
REPEATS = {100: 5, 1_000: 2, 10_000: 1}
#: Batch sizes for the cost-per-record sweep (the handler alone).
SWEEP = (1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)
ROUND_TRIP_S = 0.005
#: Batching windows compared, at a shard rate that fills no batch of WINDOW_BATCH_SIZE.
WINDOWS_S = (0, 1)
WINDOW_BATCH_SIZE = 1_000
WINDOW_RATE = 100  # records per second
WINDOW_SECONDS = 6
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
        elif roll < 0.192:
            reading["timestamp"] = 86400  # a clock never set
        payloads.append(json.dumps(reading).encode())
    return payloads


# --- the baseline: how a careful engineer writes it with Lambda Powertools ------------


def powertools_baseline(endpoint_url: str) -> Callable[[dict[str, Any], object], dict[str, Any]]:
    """A handler in the idiomatic Powertools style, doing the same work as ours.

    BatchProcessor + process_partial_response, json with Decimal, the resource
    layer's Table.batch_writer(), the same outcomes per record, and the batch's
    quarantined records in one S3 object.
    """
    table = boto3.resource("dynamodb", endpoint_url=endpoint_url).Table(TABLE)
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
    state: dict[str, Any] = {}

    def quarantine(record: KinesisStreamRecord, reason: str, device_id: object = None) -> None:
        state["quarantined"].append(
            {
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
        if timestamp < DEFAULT_EARLIEST_TIMESTAMP:
            return quarantine(record, contract.TIMESTAMP_TOO_EARLY, device_id)
        arrival = record.kinesis.approximate_arrival_timestamp
        if timestamp - Decimal(str(arrival)) > DEFAULT_MAX_CLOCK_SKEW_S:
            return quarantine(record, contract.TIMESTAMP_IN_FUTURE, device_id)
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

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        state["quarantined"] = []
        with table.batch_writer(overwrite_by_pkeys=["device_id", "timestamp"]) as writer:
            state["writer"] = writer
            response = process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        if state["quarantined"]:
            first = state["quarantined"][0]["sequence_number"]
            s3.put_object(
                Bucket=BUCKET,
                Key=f"quarantine/{first}.jsonl",
                Body="".join(json.dumps(line) + "\n" for line in state["quarantined"]).encode(),
            )
        return dict(response)

    return handler


# --- measurement ----------------------------------------------------------------------


class RequestCounter:
    """Counts the requests that reach a client's `before-send` event, by operation."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def watch(self, client: Any) -> None:
        """Count every request `client` sends."""
        client.meta.events.register("before-send", self._seen)

    def _seen(self, event_name: str, **_: Any) -> None:
        operation = event_name.rpartition(".")[2]
        self.counts[operation] = self.counts.get(operation, 0) + 1


def timed(handler: Callable[[dict[str, Any], object], Any], event: dict[str, Any]) -> str:
    """Run one invocation (log output captured); checks nothing failed; returns the log."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        response = handler(event, None)
    assert response == {"batchItemFailures": []}, response
    return log.getvalue()


def measure(
    handler: Callable[[dict[str, Any], object], Any], event: dict[str, Any]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) of one invocation."""
    started_cpu = time.process_time()
    started = time.perf_counter()
    timed(handler, event)
    return time.perf_counter() - started, time.process_time() - started_cpu


def our_processor(
    endpoint_url: str,
    concurrency: int = DEFAULT_WRITE_CONCURRENCY,
    executor: Executor | None = None,
) -> StreamProcessor:
    """The stream processor wired to the fake endpoint, as the function configures itself."""
    config = Config(table_name=TABLE, quarantine_bucket=BUCKET, write_concurrency=concurrency)
    pool = concurrency + 1
    return StreamProcessor(
        config,
        dynamodb=make_client("dynamodb", pool, endpoint_url=endpoint_url),
        s3=make_client("s3", pool, endpoint_url=endpoint_url),
        executor=executor,
    )


def check_every_request_is_visible(endpoint_url: str, event: dict[str, Any]) -> str:
    """One run with a before-send hook on both clients: it must see every request sent."""
    dynamodb = make_client("dynamodb", 17, endpoint_url=endpoint_url)
    s3 = make_client("s3", 17, endpoint_url=endpoint_url)
    counter = RequestCounter()
    counter.watch(dynamodb)
    counter.watch(s3)
    processor = StreamProcessor(
        Config(table_name=TABLE, quarantine_bucket=BUCKET), dynamodb=dynamodb, s3=s3
    )
    try:
        line = json.loads(timed(processor.process, event).splitlines()[-1])
    finally:
        processor.close()
    seen = (counter.counts.get("BatchWriteItem", 0), counter.counts.get("PutObject", 0))
    logged = (line["write_requests"], line["quarantine_objects"])
    assert seen == logged, f"before-send saw {seen}, the handler sent {logged}"
    return f"{seen[0]} BatchWriteItem and {seen[1]} PutObject, as the handler logged"


class _RawBody:
    """The raw side of a canned AWSResponse: the body in one chunk."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        """The body, as urllib3's response would stream it."""
        yield self.body


def _canned_success(**_: Any) -> AWSResponse:
    # What an emulator does at before-send: answer without the network.
    return AWSResponse(None, 200, {}, _RawBody(b'{"UnprocessedItems":{}}'))


def request_building_cost(event: dict[str, Any]) -> tuple[float, float]:
    """CPU microseconds per item of a 25-item BatchWriteItem through the client, no network.

    Both requests go through `client.batch_write_item`; a before-send handler answers
    them. One passes the items as dicts (botocore serialises them), the other as
    EncodedItem (the handlers splice the text): the difference is what pre-encoding saves.
    """
    config = Config(table_name=TABLE, quarantine_bucket=BUCKET)
    accepted: dict[tuple[str, str], Accepted] = {}
    for record in event["Records"][:1000]:
        data = base64.b64decode(record["kinesis"]["data"])
        outcome = classify(data, "1", ARRIVAL, "1700100000", "1707876000", config)
        if isinstance(outcome, Accepted):
            accepted[outcome.device_id, outcome.timestamp] = outcome
    readings = list(accepted.values())
    chunks = [readings[i : i + 25] for i in range(0, len(readings), 25)]
    plain = make_client("dynamodb", 1, endpoint_url="http://127.0.0.1:9")
    plain.meta.events.register("before-send", _canned_success)
    encoded = make_client("dynamodb", 1, endpoint_url="http://127.0.0.1:9")
    encoded_requests.install(encoded)  # as the processor does on the client it is given
    encoded.meta.events.register("before-send", _canned_success)
    as_dicts = [[{"PutRequest": {"Item": json.loads(r.item_json)}} for r in c] for c in chunks]
    as_encoded = [[{"PutRequest": {"Item": EncodedItem(r.item_json)}} for r in c] for c in chunks]
    costs: dict[str, list[float]] = {"dicts": [], "encoded": []}
    for _ in range(5):
        for name, client, requests in (
            ("dicts", plain, as_dicts),
            ("encoded", encoded, as_encoded),
        ):
            started = time.process_time()
            for puts in requests:
                client.batch_write_item(RequestItems={TABLE: puts})
            costs[name].append((time.process_time() - started) / len(readings) * 1e6)
    return statistics.median(costs["dicts"]), statistics.median(costs["encoded"])


class _InlineExecutor(Executor):
    """Runs each task as it is submitted, on the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` now; its outcome is in the returned future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def print_cpu_profile(endpoint_url: str, event: dict[str, Any]) -> None:
    """cProfile of one handler run with every write on the profiled thread.

    cProfile sees one thread only; running the writer's tasks inline puts the
    whole CPU cost (validation, botocore, signing, HTTP) in one profile. Time
    blocked on the endpoint's 5 ms shows as socket waits: read the CPU entries.
    """
    processor = our_processor(endpoint_url, 1, executor=_InlineExecutor())
    timed(processor.process, event)  # warm connections
    profile = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profile.runcall(processor.process, event, None)
    pstats.Stats(profile).sort_stats("tottime").print_stats(30)


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def compare(endpoint_url: str) -> None:
    """Ours against the baseline at each size, interleaved; prints the table."""
    events = {size: kinesis_event(realistic_payloads(size)) for size in SIZES}
    ours = our_processor(endpoint_url)
    baseline = powertools_baseline(endpoint_url)
    for event in events.values():  # warm: connections, first-call imports
        timed(ours.process, event)
        timed(baseline, event)
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(ROUNDS):
        for size in SIZES:
            for _ in range(REPEATS[size]):
                for name, handler in (("ours", ours.process), ("baseline", baseline)):
                    samples.setdefault((name, size), []).append(measure(handler, events[size]))
    ours.close()
    print(
        f"{'records':>8} {'runs':>5} | {'ours wall':>10} {'ours CPU':>9} | "
        f"{'baseline wall':>13} {'baseline CPU':>12} | {'ratio wall':>10} {'ratio CPU':>9}"
    )
    for size in SIZES:
        wall = {name: [w for w, _ in samples[name, size]] for name in ("ours", "baseline")}
        cpu = {name: [c for _, c in samples[name, size]] for name in ("ours", "baseline")}
        print(
            f"{size:>8} {len(wall['ours']):>5} | {_ms(wall['ours']):>8.1f}ms "
            f"{_ms(cpu['ours']):>7.1f}ms | {_ms(wall['baseline']):>11.1f}ms "
            f"{_ms(cpu['baseline']):>10.1f}ms | {_ms(wall['baseline']) / _ms(wall['ours']):>9.1f}x "
            f"{_ms(cpu['baseline']) / _ms(cpu['ours']):>8.1f}x"
        )
    print("goal: >= 10x at 10,000 records, >= 3x at 100 (wall, medians)")


def sweep(endpoint_url: str) -> None:
    """The handler alone at each batch size: wall time per invocation and per record."""
    processor = our_processor(endpoint_url)
    events = {size: kinesis_event(realistic_payloads(size)) for size in SWEEP}
    for event in events.values():
        timed(processor.process, event)
    samples: dict[int, list[float]] = {size: [] for size in SWEEP}
    for _ in range(5):
        for size in SWEEP:
            for _ in range(max(1, min(200, 2_000 // size))):
                samples[size].append(measure(processor.process, events[size])[0])
    processor.close()
    print("batch size sweep (handler only, median wall):")
    for size in SWEEP:
        median = statistics.median(samples[size])
        print(
            f"  {size:>6} records: {median * 1000:8.1f} ms per invocation,"
            f" {median / size * 1e6:7.1f} us per record ({len(samples[size])} runs)"
        )


_DELIVERED: list[tuple[int, float]] = []


def latency_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stub function for the window measurement: notes batch size and put-to-invoke latency."""
    now = time.time()
    records = event["Records"]
    # The runner loads a private copy of this module, as a fresh sandbox would: note the
    # deliveries in the instance the benchmark runs in.
    delivered = sys.modules[__name__]._DELIVERED
    delivered.extend(
        (len(records), now - r["kinesis"]["approximateArrivalTimestamp"]) for r in records
    )
    return {"batchItemFailures": []}


def _window_latency_once(endpoint: str, window_s: int) -> tuple[float, float, float]:
    """(p50 s, p99 s, mean records per batch) of records put at WINDOW_RATE for a window."""
    name, arn = deploy_mapped_stream(
        endpoint,
        "benchmarks.bench_stream_processor.latency_handler",
        BatchSize=WINDOW_BATCH_SIZE,
        MaximumBatchingWindowInSeconds=window_s,
    )
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)
    _DELIVERED.clear()
    with tempfile.TemporaryDirectory() as state:
        runner = EventSourceMappingRunner(
            endpoint, state_dir=state, mapping_filter=lambda m: m.stream_arn == arn
        ).start()
        try:
            started = time.monotonic()
            for i in range(WINDOW_RATE * WINDOW_SECONDS):
                pause = started + i / WINDOW_RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                kinesis.put_record(StreamName=name, Data=b"{}", PartitionKey="sensor")
            runner.wait_until_drained(60)
        finally:
            runner.stop()
    latencies = sorted(latency for _, latency in _DELIVERED)
    batches = [size for size, _ in _DELIVERED]
    return (
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
        len(batches) / sum(1 / size for size in batches),
    )


def window_latency() -> None:
    """Put-to-invoke latency per batching window, on the local cloud's mapping runner."""
    with overridden({**defaults.CREDENTIALS, "AWS_DEFAULT_REGION": REGION}):
        emulator = Emulator(port=free_port()).start()
        try:
            print(
                f"batching window, BatchSize {WINDOW_BATCH_SIZE}, {WINDOW_RATE} records/s on one"
                " shard (local mapping runner, which polls every 20 ms; AWS polls a shard once a"
                " second):"
            )
            for window_s in WINDOWS_S:
                p50, p99, per_batch = _window_latency_once(emulator.endpoint_url, window_s)
                print(
                    f"  window {window_s} s: put-to-invoke p50 {p50 * 1000:6.0f} ms,"
                    f" p99 {p99 * 1000:6.0f} ms, {per_batch:6.1f} records per batch"
                )
        finally:
            emulator.stop()


def main() -> None:
    """Run the comparison, the visibility check, the sweeps and the request cost."""
    server, endpoint_url = serve_in_subprocess(ROUND_TRIP_S)
    try:
        with overridden(FAKE_CREDENTIALS):
            print(
                f"{ROUND_TRIP_S * 1000:.0f} ms per request, {DEFAULT_WRITE_CONCURRENCY} concurrent"
                f" writes; {ROUNDS} interleaved rounds"
            )
            compare(endpoint_url)
            event = kinesis_event(realistic_payloads(10_000))
            print(
                "seen by a before-send hook:", check_every_request_is_visible(endpoint_url, event)
            )
            sweep(endpoint_url)
            dicts_us, encoded_us = request_building_cost(event)
            print(
                f"BatchWriteItem through the client, CPU per item: dict items {dicts_us:.1f} us,"
                f" pre-encoded {encoded_us:.1f} us"
            )
            if os.environ.get("BENCH_PROFILE"):
                print_cpu_profile(endpoint_url, event)
    finally:
        server.terminate()
        server.wait()
    window_latency()


if __name__ == "__main__":
    main()
