"""The whole local streaming path under load: devices -> MQTT -> rules -> Kinesis -> DynamoDB.

Each run starts a fresh `LocalCloud` on free ports (state in a temporary directory) and a
simulated fleet publishing at a fixed rate over MQTT QoS 1, waits until the cloud has
drained, then reconciles what came out against what went in:

- readings/s sustained: published (by the fleet) and stored (items in DynamoDB divided by
  the time from the first publish until the cloud had drained);
- publish-to-stored latency of every stored reading: its `ingested_at` minus its
  `timestamp`. The simulator stamps each reading with its clock at publish time; the
  fleet's clock here records every value it hands out, and the run checks that every
  stored timestamp is one of them, so the latency really starts at publish;
- lost: published - (stored + quarantined + rule errors), which must be 0. Quarantined
  readings are the distinct sequence numbers in the quarantine prefix; rule errors are
  the messages the topic rule's error action kept under `errors/`, cross-checked with
  the rules engine's counters.

The fleet runs in a child process, as devices are not part of the cloud: in one process
the fleet's publishing would compete with the cloud for the interpreter lock.

Settings (environment): `BENCH_LOCAL_SECONDS` (default 60), `BENCH_LOCAL_RATE` (readings/s,
default 1000), `BENCH_LOCAL_RUNS` (default 2), `BENCH_LOCAL_DEVICES` (default 100);
The AWS side of the cloud runs in a process of its own (`local_cloud.service`), and the
function in worker processes of that one (`local_cloud.lambda_sandbox`), so moto's own
methods cannot be swapped in per run; the micro-benchmarks printed first measure
what two of `local_cloud/moto_patches.py` save, on bare moto objects.
Goal: 1,000 readings/s sustained with p99 under 2 s on a 2-core machine. Run alone with
`.venv/bin/python -m benchmarks local_path`.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3

from cloudformation.streaming import RULE_ERRORS_PREFIX
from local_cloud import moto_internals, moto_patches
from local_cloud.cloud import LocalCloud
from local_cloud.ports import free_port
from platform_tools.device_simulator import (
    MALFORMED_BAD_TIMESTAMP,
    WITHOUT_PARTITION_KEY,
    publish,
)
from stream_processor import contract

DEFAULT_SECONDS = 60.0
DEFAULT_RATE = 1000.0
DEFAULT_RUNS = 2
DEFAULT_DEVICES = 100
MALFORMED_SHARE = 0.01
#: A stored timestamp is the publish clock rounded to the millisecond.
_CLOCK_MATCH_S = 0.0015
#: Published before the clock starts, so the function's cold start is not in the figures;
#: its timestamp is years before any the fleet sends.
WARM_UP_TIMESTAMP = 1_600_000_000.0
WARM_UP_READING = json.dumps(
    {"device_id": "warm-up", "timestamp": WARM_UP_TIMESTAMP, "temperature": 20, "humidity": 50}
).encode()
GOAL_RATE = 1000.0
GOAL_P99_S = 2.0


def _setting(name: str, default: float) -> float:
    """A positive number from the environment, or the default; a bad value fails naming it."""
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {text!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be positive, got {text!r}")
    return value


class RecordingClock:
    """`time.time` that remembers every value it returned (the readings' timestamps)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __call__(self) -> float:
        now = time.time()
        self.values.append(now)
        return now


def publish_fleet(
    host: str, port: int, devices: int, rate: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    """Run the simulated fleet (in a child process); returns its summary and clock values."""
    from platform_tools.device_simulator import simulate

    clock = RecordingClock()
    summary = simulate(
        devices=devices,
        rate=rate,
        duration=seconds,
        malformed_share=MALFORMED_SHARE,
        host=host,
        port=port,
        seed=7,
        progress=False,
        ack_timeout=60.0,
        clock=clock,
    )
    return summary.as_dict(), clock.values


@dataclass
class RunResult:
    """The figures of one run."""

    published: int
    acknowledged: int
    publish_s: float
    drained_s: float
    stored: int
    quarantined: int
    rule_errors: int
    rule_stats: dict[str, int]
    expected: dict[str, int]
    pairs: list[tuple[float, float]]
    unmatched_timestamps: int
    #: The emulator's snapshots during the run: how many, the last one's seconds and bytes.
    persistence: dict[str, float] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Published readings that are neither stored, quarantined nor kept as rule errors."""
        return self.published - self.stored - self.quarantined - self.rule_errors

    @property
    def published_rate(self) -> float:
        """Readings/s the fleet published."""
        return self.published / self.publish_s

    @property
    def stored_rate(self) -> float:
        """Readings/s stored, from the first reading's publish to the last one's storing."""
        return self.stored / (self.last_stored - self.first_published)

    @property
    def first_published(self) -> float:
        """Epoch seconds of the earliest stored reading's publish."""
        return min(stamp for stamp, _ in self.pairs)

    @property
    def last_stored(self) -> float:
        """Epoch seconds at which the last reading was stored."""
        return max(ingested for _, ingested in self.pairs)

    @property
    def latencies(self) -> list[float]:
        """Publish-to-stored latency of every stored reading, seconds."""
        return [ingested - stamp for stamp, ingested in self.pairs]

    def tail_p99(self, share: float = 0.1) -> tuple[float, float]:
        """p99 latency of the first and of the last `share` of readings by publish time.

        A pipeline that slows down as the stream fills shows it here first.
        """
        ordered = [ingested - stamp for stamp, ingested in sorted(self.pairs)]
        n = max(2, int(len(ordered) * share))
        return _p99(ordered[:n]), _p99(ordered[-n:])

    def quantile(self, q: int) -> float:
        """The q-th percentile of publish-to-stored latency, seconds."""
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]


def warm_up_ingested(pairs: list[tuple[float, float]]) -> float:
    """`ingested_at` of the warm-up reading (the only one with its timestamp)."""
    (ingested,) = [i for stamp, i in pairs if stamp == WARM_UP_TIMESTAMP]
    return ingested


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _stored_items(dynamodb: Any, table: str) -> list[tuple[float, float]]:
    """(timestamp, ingested_at) of every item in the table."""
    pairs = []
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        ProjectionExpression="#t, #i",
        ExpressionAttributeNames={"#t": contract.TIMESTAMP, "#i": contract.INGESTED_AT},
    ):
        for item in page["Items"]:
            pairs.append(
                (float(item[contract.TIMESTAMP]["N"]), float(item[contract.INGESTED_AT]["N"]))
            )
    return pairs


def _quarantined(s3: Any, bucket: str, prefix: str) -> int:
    """Distinct Kinesis sequence numbers quarantined (a redelivered batch rewrites its object)."""
    sequences: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            sequences.update(
                json.loads(line)["sequence_number"] for line in body.splitlines() if line.strip()
            )
    return len(sequences)


def _rule_errors(s3: Any, bucket: str) -> int:
    """Messages the topic rule's error action kept (one object each)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RULE_ERRORS_PREFIX)
    return sum(page.get("KeyCount", 0) for page in pages)


def _unmatched(timestamps: list[float], clock_values: list[float]) -> int:
    """Stored timestamps that are not (to the millisecond) a value of the publish clock."""
    clock = sorted(clock_values)
    misses = 0
    for stamp in timestamps:
        i = bisect.bisect_left(clock, stamp - _CLOCK_MATCH_S)
        if i == len(clock) or clock[i] > stamp + _CLOCK_MATCH_S:
            misses += 1
    return misses


def run_once(index: int, seconds: float, rate: float, devices: int) -> RunResult:
    """One run on a fresh local cloud; its own deployment name keeps runs apart."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-local-path-") as state_dir,
        open(os.devnull, "w") as devnull,
    ):
        env = f"bench{index}"
        cloud = LocalCloud(
            state_dir=state_dir, aws_port=free_port(), mqtt_port=free_port(), env=env
        )
        # The function logs one JSON line per batch to stdout (CloudWatch EMF); keep
        # them out of the report.
        with contextlib.redirect_stdout(devnull):
            endpoints = cloud.start()
        try:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                # Warm the child (interpreter start, imports) and the function (its cold
                # start) before the clock starts: the goal is about the sustained rate.
                pool.submit(time.time).result()
                with contextlib.redirect_stdout(devnull):
                    publish(
                        "iot/sensors",
                        WARM_UP_READING,
                        host=endpoints.mqtt_host,
                        port=endpoints.mqtt_port,
                    )
                    cloud.wait_until_drained(timeout=60)
                started = time.monotonic()
                with contextlib.redirect_stdout(devnull):
                    summary, clock_values = pool.submit(
                        publish_fleet,
                        endpoints.mqtt_host,
                        endpoints.mqtt_port,
                        devices,
                        rate,
                        seconds,
                    ).result()
                    cloud.wait_until_drained(timeout=max(120.0, seconds * 2))
            drained_s = time.monotonic() - started
            rule_stats = cloud.rule_stats()

            kw = {"endpoint_url": endpoints.aws, "region_name": endpoints.region}
            dynamodb, s3 = boto3.client("dynamodb", **kw), boto3.client("s3", **kw)
            pairs = _stored_items(dynamodb, endpoints.output("streaming", "TableName"))
            pairs.remove((WARM_UP_TIMESTAMP, warm_up_ingested(pairs)))
            bucket = endpoints.output("streaming", "QuarantineBucketName")
            quarantined = _quarantined(
                s3, bucket, endpoints.output("streaming", "QuarantinePrefix")
            )
            rule_errors = _rule_errors(s3, bucket)
            persistence = cloud.persistence_stats()
        finally:
            cloud.stop()
    by_kind = summary["by_kind"]
    return RunResult(
        published=summary["published"],
        acknowledged=summary["acknowledged"],
        publish_s=summary["duration_s"],
        drained_s=drained_s,
        stored=len(pairs),
        quarantined=quarantined,
        rule_errors=rule_errors,
        rule_stats=rule_stats,
        expected={
            "stored": summary["published"] - summary["malformed"],
            "quarantined": by_kind.get(MALFORMED_BAD_TIMESTAMP, 0),
            "rule_errors": sum(n for k, n in by_kind.items() if k in WITHOUT_PARTITION_KEY),
        },
        pairs=pairs,
        unmatched_timestamps=_unmatched([stamp for stamp, _ in pairs], clock_values),
        persistence=persistence,
    )


def _describe(run: RunResult) -> str:
    first, last = run.tail_p99()
    return (
        f"published {run.published} ({run.published_rate:,.0f}/s, acked {run.acknowledged}), "
        f"stored {run.stored} ({run.stored_rate:,.0f}/s), quarantined {run.quarantined}, "
        f"rule errors {run.rule_errors} (engine error_actions "
        f"{run.rule_stats.get('error_actions', 0)}, failed "
        f"{run.rule_stats.get('error_actions_failed', 0)}), lost {run.lost}; "
        f"latency p50 {run.quantile(50) * 1000:,.0f} ms, p99 {run.quantile(99) * 1000:,.0f} ms, "
        f"max {max(run.latencies) * 1000:,.0f} ms (p99 of the first tenth {first * 1000:,.0f} ms, "
        f"of the last tenth {last * 1000:,.0f} ms); drained {run.drained_s - run.publish_s:.1f} s "
        f"after the last publish; timestamps not from the publish clock: "
        f"{run.unmatched_timestamps}; expected {run.expected}; snapshots of the emulator's "
        f"state {run.persistence.get('snapshots', 0):.0f} (last "
        f"{run.persistence.get('snapshot_seconds', 0):.2f} s, "
        f"{run.persistence.get('snapshot_bytes', 0) / 1e6:.1f} MB)"
    )


def put_record_cost(get_max: Any, fill: int, puts: int = 300) -> float:
    """Microseconds per PutRecord on a moto shard already holding `fill` records.

    Measured on a bare moto `Shard` with the given last-sequence-number lookup, so
    moto's own lookup and the local cloud's can be compared in the same run.
    """
    Shard = moto_internals.patch_targets().shard
    shard = Shard(0, 0, 2**128 - 1)
    data = b'{"device_id": "sensor-0001", "timestamp": 1}'
    saved = Shard.get_max_sequence_number
    setattr(Shard, "get_max_sequence_number", get_max)  # noqa: B010 (a method, on purpose)
    try:
        for _ in range(fill):
            shard.put_record("sensor-0001", data, None)
        start = time.perf_counter()
        for _ in range(puts):
            shard.put_record("sensor-0001", data, None)
        return (time.perf_counter() - start) / puts * 1e6
    finally:
        setattr(Shard, "get_max_sequence_number", saved)  # noqa: B010


def routing_cost(get_backend: Any, requests: int = 200) -> float:
    """Microseconds moto's server spends finding the service of one DynamoDB request."""
    app = moto_internals.server_application()
    start = time.perf_counter()
    for _ in range(requests):
        get_backend(app, "dynamodb.ap-southeast-2.amazonaws.com")
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    """Run the whole local path RUNS times and print each run and the medians."""
    seconds = _setting("BENCH_LOCAL_SECONDS", DEFAULT_SECONDS)
    rate = _setting("BENCH_LOCAL_RATE", DEFAULT_RATE)
    runs = int(_setting("BENCH_LOCAL_RUNS", DEFAULT_RUNS))
    devices = int(_setting("BENCH_LOCAL_DEVICES", DEFAULT_DEVICES))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(
        f"{runs} run(s): {devices} devices at {rate:,.0f} readings/s for {seconds:g} s over "
        f"MQTT QoS 1, {MALFORMED_SHARE:.0%} malformed"
    )
    fills = (0, 10_000, int(rate * seconds))
    for label, lookup in (
        ("moto's own lookup", moto_patches.original("Shard.get_max_sequence_number")),
        ("constant-time lookup", moto_patches.get_max_sequence_number),
    ):
        costs = ", ".join(
            f"{statistics.median(put_record_cost(lookup, fill) for _ in range(3)):,.0f} us at "
            f"{fill:,}"
            for fill in fills
        )
        print(f"  PutRecord on a moto shard, {label}: {costs} records")
    routing = ", ".join(
        f"{label} {statistics.median(routing_cost(lookup) for _ in range(3)):,.1f} us"
        for label, lookup in (
            (
                "moto's own",
                moto_patches.original("DomainDispatcherApplication.get_backend_for_host"),
            ),
            ("remembered per host", moto_patches.get_backend_for_host),
        )
    )
    print(f"  routing one request in moto's server: {routing}")
    results = []
    for index in range(1, runs + 1):
        result = run_once(index, seconds, rate, devices)
        print(f"  run {index}: {_describe(result)}")
        results.append(result)
    _summarise(results, runs, "")


def _summarise(results: list[RunResult], runs: int, label: str) -> None:
    median = statistics.median
    published = median([r.published_rate for r in results])
    stored = median([r.stored_rate for r in results])
    p50 = median([r.quantile(50) for r in results])
    p99 = median([r.quantile(99) for r in results])
    lost = sum(r.lost for r in results)
    unmatched = sum(r.unmatched_timestamps for r in results)
    print(
        f"median of {runs}{label}: published {published:,.0f}/s, stored {stored:,.0f}/s, "
        f"publish-to-stored p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms; "
        f"lost {lost} in all runs; timestamps not from the publish clock {unmatched}"
    )
    met = published >= GOAL_RATE * 0.99 and p99 < GOAL_P99_S and lost == 0
    print(
        f"  goal ({GOAL_RATE:,.0f}/s sustained, p99 < {GOAL_P99_S:g} s, nothing lost): "
        f"{'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
