"""DynamoDB exports of the local cloud on a large table, and what its change journal costs.

One emulator runs in this process on a free port; everything is asked over its HTTP API
except the load of the table:

1. `BENCH_EXPORTS_ITEMS` readings (default 1,000,000) are written into a table with PITR
   on through moto's table, i.e. the same `Table.put_item` every API write ends in, so
   each is journalled as a PutItem would be (over HTTP the load alone takes most of an
   hour on a 2-core machine).
2. Full export (`ExportTableToPointInTime`, `DescribeExport` polled every 0.25 s): the
   seconds it took (its EndTime - StartTime), items, bytes of data files;
   `BENCH_EXPORTS_RUNS` runs (default 3), median.
3. `BENCH_EXPORTS_CHANGES` writes (default 10,000: four in five new readings, one in five
   an update of an existing key), then an incremental export of the window holding them
   and a full export of the same state, alternated `BENCH_EXPORTS_RUNS` times: items,
   bytes and seconds of each, and their ratios (median of the per-run ratios).
4. The write path, in CPU time: BatchWriteItem over HTTP, and moto's `Table.put_item`
   alone, with the journal and without it (moto's own), alternated in rounds on the same
   items; the median ratio and microseconds added.

5. Full export again after dropping the JSON the local cloud keeps beside each item (a
   table restored from a snapshot has none): the cost of building every line.

Also printed: the journal's size per write and the process's peak resident memory.
Goal: a full export of 1,000,000 items well inside the batch side's 30 s for a rebuild;
the incremental export of 10,000 changes at least 50 times fewer items and 10 times
sooner than the full export of the same table. The machine is shared: read ratios
measured in one run, not absolute times across runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import time
from datetime import UTC, datetime

import boto3
import time_machine

from local_cloud import defaults, dynamodb_exports, moto_internals, moto_patches
from local_cloud.emulator import Emulator
from local_cloud.ports import free_port
from tests.support.readings_table import create_readings_table

DEFAULT_ITEMS = 1_000_000
DEFAULT_CHANGES = 10_000
DEFAULT_RUNS = 3
POLL_SECONDS = 0.25
WRITE_ROUNDS = 8
WRITES_PER_ROUND = 2_500
DEVICES = 1_000
TABLE = "bench-exports"
BUCKET = "bench-exports"
GOAL_FULL_S = 30.0
GOAL_FEWER_ITEMS = 50.0
GOAL_SOONER = 10.0


def _count(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    value = int(text)
    if value <= 0:
        raise SystemExit(f"{name} must be a positive whole number, not {text!r}")
    return value


def reading(n: int, temperature: float | None = None) -> dict:
    """The `n`th reading of the fleet, shaped as the stream processor stores it."""
    return {
        "device_id": {"S": f"sensor-{n % DEVICES:04d}"},
        "timestamp": {"N": str(1_700_000_000 + n // DEVICES)},
        "temperature": {"N": f"{temperature if temperature is not None else 15 + n % 173 / 10}"},
        "humidity": {"N": f"{30 + n % 409 / 10}"},
        "alerts": {"L": []},
        "quality_flags": {"L": [{"S": "MISSING_HUMIDITY"}] if n % 50 == 0 else []},
        "sequence_number": {"S": f"4965{n:052d}"},
        "ingested_at": {"N": str(1_700_000_000_000 + n)},
        "expires_at": {"N": str(1_707_776_000 + n // DEVICES)},
    }


def _create_table(dynamodb, name: str) -> str:
    return str(create_readings_table(dynamodb, name)["TableArn"])


def _export(dynamodb, s3, table_arn: str, **request) -> tuple[float, int, int]:
    """Seconds one export took (EndTime - StartTime, as DescribeExport reports them), its
    items and the bytes of its data files."""
    arn = dynamodb.export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket=BUCKET, S3Prefix="bench", **request
    )["ExportDescription"]["ExportArn"]
    while True:
        description = dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
        if description["ExportStatus"] != "IN_PROGRESS":
            break
        # Not more often: every poll is requests and responses in this process, which take
        # the interpreter lock from the thread writing the export.
        time.sleep(POLL_SECONDS)
    seconds = (description["EndTime"] - description["StartTime"]).total_seconds()
    if description["ExportStatus"] != "COMPLETED":
        raise SystemExit(f"export failed: {description}")
    summary = s3.get_object(Bucket=BUCKET, Key=description["ExportManifest"])["Body"].read()
    files_key = json.loads(summary)["manifestFilesS3Key"]
    files = s3.get_object(Bucket=BUCKET, Key=files_key)["Body"].read().decode().splitlines()
    size = sum(
        s3.head_object(Bucket=BUCKET, Key=json.loads(line)["dataFileS3Key"])["ContentLength"]
        for line in files
    )
    return seconds, int(description["ItemCount"]), size


def _write_path(dynamodb, backend, over_http: bool) -> tuple[float, float]:
    """CPU time of writes with the journal against moto's own put, on the same items,
    alternated round by round: the median ratio and the median microseconds added to an
    item. Over HTTP: BatchWriteItem of 25 (client and emulator are this process); else
    moto's `Table.put_item` alone."""
    ratios = []
    added = []
    for round_ in range(WRITE_ROUNDS):
        seconds = {}
        # Which goes first alternates: the second of a round pays for the first's garbage.
        for journalled in (True, False) if round_ % 2 == 0 else (False, True):
            name = f"bench-writes-{round_}-{journalled}"
            _create_table(dynamodb, name)
            items = [reading(n) for n in range(WRITES_PER_ROUND)]
            batches = [
                [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
                for start in range(0, WRITES_PER_ROUND, 25)
            ]
            own = moto_patches.without("Table.put_item")
            with contextlib.nullcontext() if journalled else own:
                # CPU time of this process: less swayed than wall time by the other
                # processes of a shared machine.
                started = time.process_time()
                if over_http:
                    for batch in batches:
                        dynamodb.batch_write_item(RequestItems={name: batch})
                else:
                    for item in items:
                        moto_internals.dynamodb_put_item(backend, name, item)
                seconds[journalled] = time.process_time() - started
            dynamodb.delete_table(TableName=name)
        ratios.append(seconds[True] / seconds[False])
        added.append((seconds[True] - seconds[False]) / WRITES_PER_ROUND * 1e6)
    return statistics.median(ratios), statistics.median(added)


def main() -> None:
    """Load, export in full, change, export incrementally, and print the figures."""
    items = _count("BENCH_EXPORTS_ITEMS", DEFAULT_ITEMS)
    changes = _count("BENCH_EXPORTS_CHANGES", DEFAULT_CHANGES)
    runs = _count("BENCH_EXPORTS_RUNS", DEFAULT_RUNS)
    emulator = Emulator(port=free_port()).start()
    try:
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=defaults.REGION,
        )
        dynamodb = session.client("dynamodb", endpoint_url=emulator.endpoint_url)
        s3 = session.client("s3", endpoint_url=emulator.endpoint_url)
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": defaults.REGION}
        )
        table_arn = _create_table(dynamodb, TABLE)
        backend = moto_internals.dynamodb_backend(
            moto_internals.default_account_id(), defaults.REGION
        )

        started = time.perf_counter()
        for n in range(items):
            moto_internals.dynamodb_put_item(backend, TABLE, reading(n))
        load_s = time.perf_counter() - started
        print(f"  loaded {items:,} items through Table.put_item in {load_s:.0f} s")

        full = [_export(dynamodb, s3, table_arn) for _ in range(runs)]
        print(
            f"  full export of {full[0][1]:,} items: median "
            f"{statistics.median(f[0] for f in full):.2f} s, {full[0][2] / 1e6:.1f} MB gzipped "
            f"(runs: {', '.join(f'{f[0]:.2f}' for f in full)}; goal under {GOAL_FULL_S:.0f} s "
            "for the whole rebuild)"
        )

        window_start = time.time()
        for k in range(changes):
            if k % 5 == 4:  # an update of an existing key
                moto_internals.dynamodb_put_item(
                    backend, TABLE, reading((k * 7919) % items, temperature=99.5)
                )
            else:
                moto_internals.dynamodb_put_item(backend, TABLE, reading(items + k))
        spec = {
            "ExportFromTime": datetime.fromtimestamp(window_start, UTC),
            "ExportToTime": datetime.fromtimestamp(window_start + 20 * 60, UTC),
        }
        pairs = []
        with time_machine.travel(window_start + 3600, tick=True):
            for _ in range(runs):
                inc = _export(
                    dynamodb,
                    s3,
                    table_arn,
                    ExportType="INCREMENTAL_EXPORT",
                    IncrementalExportSpecification=spec,
                )
                whole = _export(dynamodb, s3, table_arn)
                pairs.append((inc, whole))
        inc_s = statistics.median(p[0][0] for p in pairs)
        whole_s = statistics.median(p[1][0] for p in pairs)
        fewer = statistics.median(p[1][1] / p[0][1] for p in pairs)
        sooner = statistics.median(p[1][0] / p[0][0] for p in pairs)
        inc_items, inc_bytes = pairs[0][0][1], pairs[0][0][2]
        whole_items, whole_bytes = pairs[0][1][1], pairs[0][1][2]
        print(
            f"  after {changes:,} writes: incremental {inc_items:,} items, "
            f"{inc_bytes / 1e6:.2f} MB, {inc_s:.2f} s; full {whole_items:,} items, "
            f"{whole_bytes / 1e6:.1f} MB, {whole_s:.2f} s"
        )
        print(
            f"  incremental vs full, same state: {fewer:.0f}x fewer items (goal "
            f"{GOAL_FEWER_ITEMS:.0f}x), {whole_bytes / max(inc_bytes, 1):.0f}x fewer bytes, "
            f"{sooner:.1f}x sooner (goal {GOAL_SOONER:.0f}x)"
        )

        journal = dynamodb_exports.journal_of(moto_internals.dynamodb_table(backend, TABLE))
        assert journal is not None
        print(
            f"  journal: {len(journal):,} writes, {journal.compressed_bytes() / len(journal):.0f} "
            "bytes a write (sealed segments)"
        )
        cold = []
        for _ in range(runs):
            for item in moto_internals.table_items(moto_internals.dynamodb_table(backend, TABLE)):
                dynamodb_exports.forget_image(item)
            cold.append(_export(dynamodb, s3, table_arn)[0])
        print(
            f"  full export with no item's JSON kept (as after a restore from a snapshot): "
            f"median {statistics.median(cold):.2f} s (runs: {', '.join(f'{c:.2f}' for c in cold)})"
        )
        for label, over_http in (("BatchWriteItem over HTTP", True), ("Table.put_item", False)):
            ratio, added = _write_path(dynamodb, backend, over_http)
            print(
                f"  {label}, with the journal / moto's own (CPU time): {ratio:.2f}x, {added:.0f} "
                f"µs more an item (medians of {WRITE_ROUNDS} alternated rounds of "
                f"{WRITES_PER_ROUND:,})"
            )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak resident memory: {peak_mb:,.0f} MB ({peak_mb * 1e6 / items:,.0f} B an item)")
    finally:
        emulator.stop()
