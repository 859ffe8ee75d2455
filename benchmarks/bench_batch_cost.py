"""What a batch run costs by write time: an incremental catch-up against a full-export run.

One emulator runs in this process, with both stacks deployed from their templates, and
the whole batch job runs as `pipeline-platform materialize` runs it (in-process Dagster,
the DuckDB warehouse, dbt). The clock is moved with time-machine, as the tests do, so
every window is one AWS accepts (15 minutes or more of the table's recovery history):

1. `BENCH_COST_ITEMS` readings (default 1,000,000) are written into the table through
   moto's table (`Table.put_item`, the call every API write ends in, journalled with its
   write time as a PutItem over HTTP would be, which would take most of an hour here);
2. the first run on that empty lake: one full export, the lake and warehouse built from
   it (the "full rebuild of 1,000,000 readings" figure);
3. then, `BENCH_COST_RUNS` times (default 1): an hour later `BENCH_COST_CHANGES` writes
   (default 10,000: 60 % new readings of today, 20 % late readings for days already in the
   lake, 20 % updates of existing keys), then
   - the incremental catch-up (`materialize` with no arguments);
   - the lake's objects and the warehouse file put back as they were before it, and a
     full-export run (`materialize --rebuild`) from that same state, which has the same
     writes to apply;
   - twenty minutes later, a catch-up with nothing written since: what a run costs
     whatever it carries (Dagster, dbt's build and tests, the checks);
   each with the items and bytes exported and the wall time of every stage.

Goal: the incremental run exports at least 50 times fewer items and finishes at least 10
times sooner than the full-export run; the full rebuild stays under 30 s. The machine is
shared: compare the ratios measured in one invocation, not absolute times across runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import time_machine

from cloudformation.naming import Naming
from local_cloud import defaults, moto_internals
from local_cloud.cloud import deploy_stacks
from local_cloud.emulator import Emulator
from local_cloud.glue_crawler import GlueCrawlerRunner
from local_cloud.ports import free_port
from pipeline_platform.environment import ENV_DEPLOYMENT, ENV_WAREHOUSE_PATH, load_settings

BENCH_ENV = "cost"
DEVICES = 1_000
HOUR = 3600.0
#: Long enough after a run that a catch-up's window (15 minutes at least) holds no write.
QUIET = 20 * 60.0
GOAL_FEWER_ITEMS = 50.0
GOAL_SOONER = 10.0
GOAL_REBUILD_S = 30.0
# Stages as the summary names them, in the order of the graph.
STAGES = (
    ("export", "s3/dynamodb_export"),
    ("lake (readings)", "s3/lake/sensor_readings"),
    ("lake (quarantine)", "s3/lake/quarantined_records"),
    ("lake (rule errors)", "s3/lake/rule_errors"),
    ("crawl", "glue/sensor_readings"),
    ("warehouse (readings)", "warehouse/raw_sensor_readings"),
    ("dbt (build)", "analytics/fct_device_hourly"),
)


def _count(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value <= 0:
        raise SystemExit(f"{name} must be a positive whole number")
    return value


def item(n: int, ts: int, temperature: float, now: float) -> dict[str, Any]:
    """A reading as the stream processor stores it, in DynamoDB JSON."""
    return {
        "device_id": {"S": f"sensor-{n % DEVICES:04d}"},
        "timestamp": {"N": str(ts)},
        "temperature": {"N": f"{temperature:.1f}"},
        "humidity": {"N": f"{30 + n % 409 / 10}"},
        "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}] if temperature > 50 else []},
        "quality_flags": {"L": []},
        "sequence_number": {"S": f"4965{n:052d}"},
        "ingested_at": {"N": f"{now:.3f}"},
        "expires_at": {"N": str(int(now) + 90 * 86400)},
    }


def _backend() -> Any:
    return moto_internals.dynamodb_backend(moto_internals.default_account_id(), defaults.REGION)


def _load(table: str, items: int, now: float) -> float:
    """Write `items` readings spread over the 30 days before `now`; seconds taken."""
    backend = _backend()
    span = 30 * 86400
    started = time.perf_counter()
    for n in range(items):
        ts = int(now) - span + (n * span) // items
        moto_internals.dynamodb_put_item(backend, table, item(n, ts, 15 + n % 173 / 10, now))
    return time.perf_counter() - started


def _change(table: str, items: int, changes: int, round_: int, now: float) -> None:
    """`changes` writes: new readings of today, late readings for old days, updates."""
    backend = _backend()
    span = 30 * 86400
    for c in range(changes):
        kind = c % 5
        if kind < 3:  # a new reading of the last hour
            n = items + round_ * changes + c
            ts = int(now) - 3600 + c % 3600
        elif kind == 3:  # a late reading for a day the lake has (a new key)
            n = items + round_ * changes + c
            ts = int(now) - span + (c * 7919) % span
        else:  # an update of an existing key: the same device and timestamp, a new value
            n = (c * 104729) % items
            ts = int(now) - span + (n * span) // items
        moto_internals.dynamodb_put_item(backend, table, item(n, ts, 60.0 + c % 30, now))


#: The lake bucket's prefixes a run reads and writes (exports only accumulate: not restored).
_RESTORED_PREFIXES = ("lake/", "pipeline/")


class Snapshot:
    """The lake's objects and the warehouse file as they are now, to put back later."""

    def __init__(self, bucket: str, warehouse: Path, folder: Path) -> None:
        import boto3

        self.s3 = boto3.client("s3")
        self.bucket, self.warehouse, self.copy = bucket, warehouse, folder / "warehouse.copy"
        self.objects = {key: self._get(key) for key in self._keys()}
        shutil.copyfile(warehouse, self.copy)

    def _keys(self) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for prefix in _RESTORED_PREFIXES
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]

    def _get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def restore(self) -> None:
        """Put every object back as it was, delete the ones written since, copy the file."""
        for key in set(self._keys()) - set(self.objects):
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        for key, body in self.objects.items():
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        shutil.copyfile(self.copy, self.warehouse)


def _seconds(summary: dict[str, Any], key: str) -> float:
    return float(summary["assets"].get(key, {}).get("seconds", 0.0))


def _run(log: Path, **kwargs: Any) -> tuple[dict[str, Any], float]:
    """One batch run, its output (dbt's, Dagster's) into `log`; its summary and wall time."""
    from platform_tools.batch_runs import materialize

    with log.open("a", encoding="utf-8") as out, redirect_stdout(out), redirect_stderr(out):
        started = time.perf_counter()
        summary = materialize(log_level="WARNING", **kwargs)
        return summary, time.perf_counter() - started


def _print_run(label: str, summary: dict[str, Any], total: float) -> None:
    windows = summary["windows"]
    print(
        f"  {label}: {windows['export_type']}, {windows['items_exported']:,} items, "
        f"{windows['billed_bytes'] / 1e6:.1f} MB billed, {total:.1f} s"
    )
    for name, key in STAGES:
        print(f"      {name:24s} {_seconds(summary, key):7.2f} s")
    lake = summary["assets"].get("s3/lake/sensor_readings", {})
    print(
        f"      lake phases: {lake.get('phases')}, days touched: "
        f"{len(summary['reading_days_touched'].get('readings', []))}"
    )
    failed = [name for name, passed in summary["checks"].items() if not passed]
    if failed:
        raise SystemExit(f"checks failed: {failed}")


def main() -> None:
    """Load the table, build the lake from a full export, then compare the two kinds of run."""
    items = _count("BENCH_COST_ITEMS", 1_000_000)
    changes = _count("BENCH_COST_CHANGES", 10_000)
    runs = _count("BENCH_COST_RUNS", 1)
    emulator = Emulator(port=free_port()).start()
    runner = GlueCrawlerRunner(emulator.endpoint_url).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
            warehouse = Path(tmp) / "warehouse.duckdb"
            os.environ.update(defaults.CREDENTIALS)
            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": emulator.endpoint_url,
                    ENV_DEPLOYMENT: BENCH_ENV,
                    ENV_WAREHOUSE_PATH: str(warehouse),
                }
            )
            settings = load_settings()
            deploy_stacks(Naming(BENCH_ENV, settings.region))
            log = Path(tmp) / "batch.log"
            start = time.time()
            with time_machine.travel(start + HOUR, tick=True):
                load_s = _load(settings.table_name, items, time.time())
                print(f"  loaded {items:,} readings through Table.put_item in {load_s:.0f} s")
                time.sleep(1.2)  # the export margin: a run takes writes up to a second ago
                rebuild, rebuild_s = _run(log)
                _print_run("first run, empty lake (full rebuild)", rebuild, rebuild_s)
            pairs = []
            empty_s = []
            for round_ in range(runs):
                with time_machine.travel(start + (2 + round_) * HOUR, tick=True):
                    _change(settings.table_name, items, changes, round_, time.time())
                    time.sleep(1.2)
                    before = Snapshot(settings.lake_bucket, warehouse, Path(tmp))
                    incremental, incremental_s = _run(log)
                    before.restore()
                    full, full_s = _run(log, rebuild=True)
                with time_machine.travel(start + (2 + round_) * HOUR + QUIET, tick=True):
                    empty, seconds = _run(log)
                    empty_s.append(seconds)
                _print_run(f"round {round_ + 1}, incremental catch-up", incremental, incremental_s)
                _print_run(f"round {round_ + 1}, full-export run", full, full_s)
                _print_run(f"round {round_ + 1}, catch-up with nothing new", empty, seconds)
                pairs.append((incremental, incremental_s, full, full_s))
    finally:
        runner.stop()
        emulator.stop()
    fewer = statistics.median(
        f["windows"]["items_exported"] / max(1, i["windows"]["items_exported"])
        for i, _, f, _ in pairs
    )
    sooner = statistics.median(f_s / i_s for _, i_s, _, f_s in pairs)
    export_sooner = statistics.median(
        _seconds(f, STAGES[0][1]) / max(0.001, _seconds(i, STAGES[0][1])) for i, _, f, _ in pairs
    )
    fixed = statistics.median(empty_s)
    beyond = statistics.median(
        (f_s - e_s) / max(0.001, i_s - e_s)
        for (_, i_s, _, f_s), e_s in zip(pairs, empty_s, strict=True)
    )
    print(f"readings: {items:,}, changes per round: {changes:,}, rounds: {runs} (medians)")
    goal = f"(goal {GOAL_FEWER_ITEMS:.0f} x)"
    print(f"  {'items exported, full / incremental':44s} {fewer:8.1f} x  {goal}")
    print(f"  {'whole run, full / incremental':44s} {sooner:8.1f} x  (goal {GOAL_SOONER:.0f} x)")
    print(f"  {'export stage alone, full / incremental':44s} {export_sooner:8.1f} x")
    print(f"  {'a catch-up with nothing new (fixed cost)':44s} {fixed:8.1f} s")
    print(f"  {'beyond that fixed cost, full / incremental':44s} {beyond:8.1f} x")
    print(
        f"  {'full rebuild of the table':44s} {rebuild_s:8.1f} s  (goal < {GOAL_REBUILD_S:.0f} s)"
    )
