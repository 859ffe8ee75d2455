"""What alert notifications cost: the same fleet with and without them, counted at the emulator.

A fleet of `BENCH_ALERT_DEVICES` devices (default 10,000) sends one reading per device
per minute, each device at its own second of the minute; 1 % of the readings alert, in
episodes of `BENCH_ALERT_EPISODE` readings (default 5: a freezer warms up for a few
minutes). Lambda's one-second batching window turns each second into one batch, so
the stream processor gets 60 batches a minute of about devices / 60 readings each.

The clock is simulated (time-machine): nine minutes of the fleet are replayed as fast
as the function runs, with the function seeing each batch's own time, so the state's
time-based bookkeeping (the shard's `seen` items at most once per half silence window,
15 minutes by default) happens exactly as often as it would. The first minute is a
warm-up (a fresh execution environment reads every device's state once) and is not
counted; the eight counted minutes hold one whole cycle of `seen` writes (two writes, in
fact: the first minute's devices, new to the items, are written as the count starts):
the steady state. With notifications the silence check runs once a
simulated minute as well, and after each batch the alert notifier gets the state
writes that carry events, as the state table's stream mapping (filtered, one-second
batching window) hands them over. The stream's own reads are the mapping's (free, and
not the function's): they are left out of the DynamoDB read requests.

The emulator (moto's server, as the local cloud runs it) is a process of its own whose
WSGI app counts every request it receives and, for DynamoDB's writes, the write units
(one per started KB of each item written, twice that in a transaction), for each arm
apart (they sign with different access keys).
Every request the emulator answers takes `BENCH_ALERT_ROUND_TRIP_MS` longer (default
5: an in-region round trip from Lambda, as in the stream processor's benchmark), during
which other requests go on; the emulator, one process, otherwise answers concurrent
requests one after the other, as no AWS service does.

The two arms, the baseline (the function without alert settings) and the function with
them, run in two processes that take turns a second of the fleet at a time, first one
then the other, alternately: whatever else this shared machine does at a moment falls on
both arms alike, where whole runs one after the other saw it come and go between them.
`BENCH_ALERT_ROUNDS` rounds (default 3); the table gives medians and the ratio of the
medians. The function's duration is the time `process()` takes for the counted
batches, summed, with the CPU time the function's process spent in it (the rest is
waiting for the emulator); the notifier's and the silence check's are given beside it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import time_machine

from pipeline_platform.env_override import overridden
from stream_processor import contract
from stream_processor.alert_notifier import AlertNotifier
from stream_processor.aws_clients import make_client
from stream_processor.config import DEFAULT_SILENCE_WINDOW_S, Config
from stream_processor.handler import StreamProcessor
from stream_processor.retry import Deadline
from stream_processor.silence_check import SilenceCheck
from tests.stream_processor.conftest import REGION, create_table
from tests.support.kinesis_events import kinesis_record
from tests.support.readings_table import create_alert_state_table
from tests.support.state_stream import StateStream

DEVICES = int(os.environ.get("BENCH_ALERT_DEVICES", "10000"))
ROUNDS = int(os.environ.get("BENCH_ALERT_ROUNDS", "3"))
EPISODE = int(os.environ.get("BENCH_ALERT_EPISODE", "5"))
ALERTING_SHARE = 0.01
#: Added to every request the emulator answers (milliseconds): 5 is an in-region round trip
#: from Lambda to DynamoDB or EventBridge; 0 leaves the emulator's own time only.
ROUND_TRIP_MS = float(os.environ.get("BENCH_ALERT_ROUND_TRIP_MS", "5"))
#: Not counted: a fresh execution environment reads every device's state once, in its
#: first minute.
WARM_UP_MINUTES = 1
#: Counted: one whole cycle of `seen` writes (once per half silence window, 7.5 minutes).
MINUTES = WARM_UP_MINUTES + math.ceil(DEFAULT_SILENCE_WINDOW_S / 2 / 60)
_WRITES = ("BatchWriteItem", "PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems")
_COUNTS_PATH = "/_bench/counts"
_COLLECT_PATH = "/_bench/collect"
_CREDENTIAL = re.compile(r"Credential=([^/,]+)/")
#: Each arm signs with its own access key: the emulator counts their requests apart.
_ARMS = {"baseline": "bench-baseline", "alerts": "bench-alerts"}


class CountingApp:
    """WSGI middleware: counts each request by service and action, and DynamoDB's write units
    by table, for each access key apart; `GET /_bench/counts?key=K` answers key K's counts and
    starts them again."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == _COUNTS_PATH:
            key = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("key", [""])[0]
            with self.lock:
                body = json.dumps(self.counts.pop(key, Counter())).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if environ.get("PATH_INFO") == _COLLECT_PATH:
            gc.collect()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"collected"]
        if ROUND_TRIP_MS:
            time.sleep(ROUND_TRIP_MS / 1000)  # the network's share: other requests go on
        credential = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        counts = self.counts[credential.group(1) if credential else ""]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, action = target.partition(".")
        with self.lock:
            counts[f"requests {service or 'other'}.{action}"] += 1
        if service.startswith("DynamoDB") and action in _WRITES:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            units = _write_units(action, json.loads(body))
            with self.lock:
                counts.update(units)
        return self.app(environ, start_response)


def _value_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (numbers: about half their digits)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return len(content.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(content) * 3 // 4
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) for k, v in content.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in content)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: v}) for v in content)
    return 1  # BOOL, NULL


def _item_units(item: dict[str, Any]) -> int:
    """Write units of one put: one per started KB of the item."""
    size = sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())
    return max(1, math.ceil(size / 1024))


def _write_units(action: str, request: dict[str, Any]) -> Counter[str]:
    units: Counter[str] = Counter()
    if action == "BatchWriteItem":
        for table, writes in request["RequestItems"].items():
            for write in writes:
                put = write.get("PutRequest")
                units[f"units {table}"] += _item_units(put["Item"]) if put else 1
    elif action == "TransactWriteItems":
        for item in request["TransactItems"]:
            ((_, operation),) = item.items()
            units[f"units {operation['TableName']}"] += 2 * _item_units(operation.get("Item", {}))
    elif action == "PutItem":
        units[f"units {request['TableName']}"] += _item_units(request["Item"])
    else:
        units[f"units {request['TableName']}"] += 1
    return units


def serve() -> None:
    """The child process: the emulator, counting, on a free port it prints."""
    from local_cloud.emulator import Emulator
    from local_cloud.ports import free_port

    # A run leaves a million objects of moto's behind; a collection over them in the middle
    # of the next run stalled the emulator for tens of seconds. Collected between runs only.
    gc.disable()
    emulator = Emulator(port=free_port(), wrap_app=CountingApp).start()
    print(emulator.endpoint_url, flush=True)
    threading.Event().wait()


@dataclass
class Fleet:
    """Each device's second of the minute and its alert episodes, from one seed."""

    devices: int
    seed: int = 23
    offsets: list[int] = field(default_factory=list)
    _left: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.offsets = [rng.randrange(60) for _ in range(self.devices)]
        self._left = [0] * self.devices
        self._rng = random.Random(self.seed + 1)

    def reading(self, device: int, timestamp: int) -> dict[str, Any]:
        """The device's reading at `timestamp`: 1 % of readings alert, in episodes."""
        start = ALERTING_SHARE / EPISODE / (1 - ALERTING_SHARE)
        if self._left[device] == 0 and self._rng.random() < start:
            self._left[device] = EPISODE
        alerting = self._left[device] > 0
        if alerting:
            self._left[device] -= 1
        return {
            contract.DEVICE_ID: f"device-{device:05d}",
            contract.TIMESTAMP: timestamp,
            contract.TEMPERATURE: round(
                self._rng.uniform(55, 60) if alerting else 20 + self._rng.gauss(0, 1), 2
            ),
            contract.HUMIDITY: 50,
        }


class FunctionContext:
    """What the functions read of Lambda's context: the time left, their stack timeouts."""

    def __init__(self, seconds: float) -> None:
        self._ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the invocation's timeout."""
        return int((self._ends - time.monotonic()) * 1000)


#: The stack's timeouts: the stream processor's default, the silence check's, the notifier's.
PROCESSOR_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 50.0
NOTIFIER_TIMEOUT_S = 60.0


@dataclass
class RunResult:
    """One run's counts (steady state only) and the function's summed duration."""

    counts: Counter[str]
    seconds: float
    cpu_seconds: float
    check_seconds: float
    notifier_seconds: float
    notifier_invocations: int
    readings: int
    alerting: int
    notified: int


def _batches(fleet: Fleet, start: int) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
    by_second: dict[int, list[int]] = {}
    for device, offset in enumerate(fleet.offsets):
        by_second.setdefault(offset, []).append(device)
    for minute in range(MINUTES):
        for second in range(60):
            moment = start + minute * 60 + second
            yield minute, moment, [fleet.reading(d, moment) for d in by_second.get(second, [])]


def run(
    endpoint: str,
    alerts: bool,
    turn: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> RunResult:
    """One replay of the fleet on fresh tables; with or without notifications.

    Every piece of the work (the set-up, each second of the fleet, the tally) is done inside
    a `turn()`: the other arm, taking turns with this one, sends nothing meanwhile."""
    with turn():
        setup = _set_up(alerts)
    config, dynamodb, sqs, queue_url = setup
    suffix = config.table_name.removeprefix("readings-")
    fleet = Fleet(DEVICES)
    start = int(time.time()) - 2 * 86400  # the replay's readings are two days old
    processor = StreamProcessor(config)
    check = SilenceCheck(config) if alerts else None
    notifier = AlertNotifier(f"bus-{suffix}", make_client("events", 1)) if alerts else None
    stream = StateStream(dynamodb, f"state-{suffix}") if alerts else None
    sequence = invocations = 0
    seconds = cpu_seconds = check_seconds = notifier_seconds = 0.0
    readings = alerting = 0
    try:
        with time_machine.travel(start, tick=False) as clock:
            for minute, moment, payloads in _batches(fleet, start):
                with turn():
                    if minute == WARM_UP_MINUTES and moment == start + minute * 60:
                        _counts(endpoint)  # the steady state starts here: counts from zero
                        seconds = cpu_seconds = check_seconds = notifier_seconds = 0.0
                        readings = alerting = invocations = 0
                    clock.move_to(moment + 0.5)
                    if check is not None and (moment - start) % 60 == 0:
                        began = time.perf_counter()
                        check.run(time.time(), Deadline(FunctionContext(CHECK_TIMEOUT_S)))
                        check_seconds += time.perf_counter() - began
                    if not payloads:
                        continue
                    records = [
                        kinesis_record(p, sequence + i, arrival=moment + 0.2)
                        for i, p in enumerate(payloads)
                    ]
                    sequence += len(records)
                    began, cpu_began = time.perf_counter(), time.process_time()
                    with contextlib.redirect_stdout(io.StringIO()):  # its log lines
                        answer = processor.process(
                            {"Records": records}, FunctionContext(PROCESSOR_TIMEOUT_S)
                        )
                    seconds += time.perf_counter() - began
                    cpu_seconds += time.process_time() - cpu_began
                    assert answer == {"batchItemFailures": []}, answer
                    if notifier is not None and stream is not None:
                        # The mapping's filter: only writes that carry events invoke the notifier.
                        written = [
                            r
                            for r in stream.new_records()
                            if contract.ALERT_OUTBOX in r["dynamodb"].get("NewImage", {})
                        ]
                        if written:
                            began = time.perf_counter()
                            outcome = notifier.notify(
                                written, Deadline(FunctionContext(NOTIFIER_TIMEOUT_S))
                            )
                            notifier_seconds += time.perf_counter() - began
                            invocations += 1
                            assert outcome["batchItemFailures"] == [], outcome
                    readings += len(records)
                    alerting += sum(
                        1 for p in payloads if p[contract.TEMPERATURE] > config.high_temperature_c
                    )
    finally:
        processor.close()
        if check is not None:
            check.close()
    with turn():
        counts = _counts(endpoint)
        notified = _drain(sqs, queue_url) if queue_url else 0
        for table in (config.table_name, config.alert_state_table):
            if table is not None:
                dynamodb.delete_table(TableName=table)  # the emulator's memory, for the next run
        _get(endpoint + _COLLECT_PATH)
    return RunResult(
        counts,
        seconds,
        cpu_seconds,
        check_seconds,
        notifier_seconds,
        invocations,
        readings,
        alerting,
        notified,
    )


def _set_up(alerts: bool) -> tuple[Config, Any, Any, str]:
    """Fresh tables and bucket for one run; with notifications, the bus and a queue its rule
    delivers to. Returns the function's settings, the DynamoDB and SQS clients, the queue."""
    suffix = uuid.uuid4().hex[:10]
    dynamodb, s3 = make_client("dynamodb", 4), make_client("s3", 4)
    events, sqs = make_client("events", 2), make_client("sqs", 2)
    config = Config(table_name=f"readings-{suffix}", quarantine_bucket=f"quarantine-{suffix}")
    create_table(dynamodb, config.table_name)
    s3.create_bucket(
        Bucket=config.quarantine_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    queue_url = ""
    if alerts:
        config = replace(
            config, alert_state_table=f"state-{suffix}", alert_bus_name=f"bus-{suffix}"
        )
        create_alert_state_table(dynamodb, f"state-{suffix}")
        events.create_event_bus(Name=f"bus-{suffix}")
        queue_url = sqs.create_queue(QueueName=f"alerts-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        events.put_rule(
            Name="alerts",
            EventBusName=f"bus-{suffix}",
            EventPattern=json.dumps({"source": [contract.ALERT_EVENT_SOURCE]}),
        )
        events.put_targets(
            Rule="alerts",
            EventBusName=f"bus-{suffix}",
            Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
        )
    return config, dynamodb, sqs, queue_url


def _arm(conn: Connection, endpoint: str, arm: str) -> None:
    """A child process: one arm's run, done a turn at a time when `conn` says so; its result
    goes back on `conn` (on its next turn)."""

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        conn.recv()
        try:
            yield
        finally:
            conn.send(None)

    environ = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": _ARMS[arm],
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    with overridden(environ):
        result = run(endpoint, alerts=arm == "alerts", turn=turn)
    conn.recv()
    conn.send(result)


def lockstep(endpoint: str) -> dict[str, RunResult]:
    """One round: the baseline and the function with alerts, each in a process of its own,
    take turns a second of the fleet at a time (first one, then the other, alternately), so
    whatever else the machine does falls on both alike."""
    context = multiprocessing.get_context("spawn")
    arms: dict[str, tuple[Any, Connection]] = {}
    for arm in _ARMS:
        ours, theirs = context.Pipe()
        process = context.Process(target=_arm, args=(theirs, endpoint, arm), daemon=True)
        process.start()
        arms[arm] = (process, ours)
    results: dict[str, RunResult] = {}
    turns = 0
    try:
        while len(results) < len(arms):
            order = [a for a in arms if a not in results]
            for arm in order if turns % 2 == 0 else reversed(order):
                process, conn = arms[arm]
                conn.send(True)
                try:
                    message = conn.recv()
                except EOFError:
                    stopped = f"the {arm} arm stopped (exit code {process.exitcode})"
                    raise RuntimeError(stopped) from None
                if message is not None:
                    results[arm] = message
            turns += 1
    finally:
        for process, _ in arms.values():
            process.join(30)
            if process.is_alive():
                process.kill()
    return results


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as answer:
        body: bytes = answer.read()
        return body


def _counts(endpoint: str) -> Counter[str]:
    key = urllib.parse.quote(os.environ["AWS_ACCESS_KEY_ID"])
    return Counter(json.loads(_get(f"{endpoint}{_COUNTS_PATH}?key={key}")))


def _drain(sqs: Any, url: str) -> int:
    received = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return received
        received += len(messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def _summary(result: RunResult) -> dict[str, float]:
    counts = result.counts
    writes = sum(
        n
        for k, n in counts.items()
        if k.startswith("requests DynamoDB") and k.split(".")[-1] in _WRITES
    )
    units = sum(n for k, n in counts.items() if k.startswith("units "))
    readings_units = sum(n for k, n in counts.items() if k.startswith("units readings-"))
    reads = sum(
        n
        for k, n in counts.items()
        if k.startswith("requests DynamoDB_")  # not DynamoDBStreams: the mapping's reads
        and k.split(".")[-1] not in _WRITES
    )
    events = sum(n for k, n in counts.items() if k.startswith("requests AWSEvents"))
    return {
        "DynamoDB write requests": writes,
        "DynamoDB write units": units,
        "  of which the readings table": readings_units,
        "DynamoDB read requests": reads,
        "EventBridge PutEvents requests": events,
        "function duration (s)": result.seconds,
        "function CPU time (s)": result.cpu_seconds,
        "alert notifier duration (s)": result.notifier_seconds,
        "alert notifier invocations": result.notifier_invocations,
        "silence check duration (s)": result.check_seconds,
    }


def main() -> None:
    """Run the rounds (each arm in a process of its own, taking turns) and print the table."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_alerts", "--serve"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    endpoint = process.stdout.readline().strip()
    rows: dict[str, list[RunResult]] = {"baseline": [], "alerts": []}
    try:
        for round_ in range(ROUNDS):
            results = lockstep(endpoint)
            for name, result in results.items():
                rows[name].append(result)
            print(
                f"  round {round_ + 1}: {results['alerts'].readings} readings "
                f"({results['alerts'].alerting} alerting); function duration without alerts "
                f"{results['baseline'].seconds:.1f} s, with {results['alerts'].seconds:.1f} s "
                f"({results['alerts'].seconds / results['baseline'].seconds:.3f}); "
                f"{results['alerts'].notified} notifications",
                flush=True,
            )
    finally:
        process.terminate()
        process.wait(10)
    base = [_summary(r) for r in rows["baseline"]]
    with_alerts = [_summary(r) for r in rows["alerts"]]
    sample = rows["alerts"][0]
    print(
        f"\n{DEVICES} devices, one reading a minute each ({DEVICES / 60:.0f} a batch), "
        f"{MINUTES - WARM_UP_MINUTES} counted minutes after {WARM_UP_MINUTES} of warm-up; "
        f"{sample.alerting / sample.readings:.2%} of readings alerting, in episodes of {EPISODE}; "
        f"{ROUND_TRIP_MS:g} ms added to each request; medians of {ROUNDS} rounds, the two arms "
        "taking turns a second of the fleet at a time\n"
    )
    print(f"{'':<34} {'without':>12} {'with alerts':>12} {'ratio':>8}")
    for key in base[0]:
        left = statistics.median(s[key] for s in base)
        right = statistics.median(s[key] for s in with_alerts)
        ratio = f"{right / left:.3f}" if left else "-"
        print(f"{key:<34} {left:>12.1f} {right:>12.1f} {ratio:>8}")
    print(
        f"notifications sent (median): {statistics.median(r.notified for r in rows['alerts']):.0f}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
