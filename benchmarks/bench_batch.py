"""The batch side on 1,000,000 readings: lake -> crawl -> warehouse -> dbt, stage by stage.

Export files (gzipped DynamoDB-JSON lines in the emulator's layout) are written
straight into the emulated S3, then the pipeline's stages run as in production.
In the same run a reference shaping step written the common way (pandas
`read_json(lines=True)` + `json_normalize`) reads the same files, for the ratio.
The lake asset's time includes its S3 transfers, which the reference does not
make; `shape_readings` alone on the same local files is timed as well.
Set BENCH_READINGS and BENCH_RUNS to change the size and the number of runs.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg

from cloudformation.naming import Naming
from local_cloud import defaults
from local_cloud.cloud import deploy_stacks
from local_cloud.emulator import Emulator
from local_cloud.glue_crawler import GlueCrawlerRunner
from local_cloud.ports import free_port
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.assets import export_prefix
from pipeline_platform.defs.lake.shaping import shape_readings
from pipeline_platform.environment import ENV_DEPLOYMENT, ENV_WAREHOUSE_PATH, load_settings
from stream_processor import contract

FIRST, LAST = date(2023, 11, 14), date(2023, 11, 26)
FILES = 8
BENCH_ENV = "bench"
# Everything after the export (the export files are written directly, as moto lays them out).
STAGES = [
    keys.LAKE_READINGS,
    keys.LAKE_QUARANTINE,
    keys.GLUE_READINGS,
    keys.GLUE_QUARANTINE,
    keys.RAW_READINGS,
    keys.RAW_QUARANTINE,
]


def _export_lines(n: int, start: int, stop: int) -> str:
    rng = random.Random(start)
    out = []
    span = int((LAST - FIRST).days * 86400)
    base = 1699920000  # 2023-11-14T00:00:00Z
    for i in range(start, stop):
        ts = base + (i * span) // n
        item = {
            contract.DEVICE_ID: {"S": f"sensor-{i % 500:03d}"},
            contract.TIMESTAMP: {"N": str(ts)},
            contract.TEMPERATURE: {"N": f"{rng.uniform(-5, 80):.2f}"},
            contract.HUMIDITY: {"N": f"{rng.uniform(5, 95):.1f}"},
            contract.ALERTS: {"L": [{"S": contract.HIGH_TEMPERATURE}] if i % 10 == 0 else []},
            contract.QUALITY_FLAGS: {"L": []},
            contract.SEQUENCE_NUMBER: {"S": f"{49600000000000000000 + i}"},
            contract.INGESTED_AT: {"N": str(ts + 2)},
            contract.EXPIRES_AT: {"N": str(ts + 90 * 86400)},
        }
        if i > n // 2:
            item["pressure"] = {"N": "1012.5"}
        out.append(json.dumps({"Item": item}))
    return "\n".join(out) + "\n"


def _setup(endpoint: str, tmp: Path, n: int) -> tuple[list[Path], object]:
    os.environ.update(defaults.CREDENTIALS)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            ENV_DEPLOYMENT: BENCH_ENV,
            ENV_WAREHOUSE_PATH: str(tmp / "warehouse.duckdb"),
        }
    )
    settings = load_settings()
    # The buckets, catalog and crawler as the templates define them.
    deploy_stacks(Naming(BENCH_ENV, settings.region))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=settings.region)
    days = tuple(FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1))
    prefix = export_prefix(days) + "AWSDynamoDB/bench/data/"
    files = []
    for f in range(FILES):
        path = tmp / f"part-{f}.json.gz"
        lines = _export_lines(n, f * n // FILES, (f + 1) * n // FILES)
        path.write_bytes(gzip.compress(lines.encode(), compresslevel=6))
        s3.upload_file(str(path), settings.lake_bucket, f"{prefix}{path.name}")
        files.append(path)
    return files, settings


# Warnings only: the per-event debug log of a million-reading run is noise here.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _time_shaping(files: list[Path], out_dir: Path) -> float:
    """Seconds `shape_readings` takes on the export files, every reading in range."""
    started = time.perf_counter()
    result = shape_readings([str(p) for p in files], out_dir, FIRST, LAST)
    seconds = time.perf_counter() - started
    assert sum(result.rows_by_day.values()) == result.export_items, result
    return seconds


def _reference_shaping(files: list[Path]) -> int:
    import pandas as pd

    frames = []
    for path in files:
        raw = pd.read_json(path, lines=True, compression="gzip")
        flat = pd.json_normalize(raw["Item"].tolist())
        out = pd.DataFrame(
            {
                "device_id": flat["device_id.S"],
                "reading_epoch": flat["timestamp.N"].astype(float),
                "temperature": pd.to_numeric(flat["temperature.N"]),
                "humidity": pd.to_numeric(flat["humidity.N"]),
                "alerts": flat["alerts.L"].map(lambda v: ",".join(x["S"] for x in v)),
                "ingested_at": pd.to_datetime(flat["ingested_at.N"].astype(float), unit="s"),
            }
        )
        out["reading_at"] = pd.to_datetime(out["reading_epoch"], unit="s")
        out["dt"] = out["reading_at"].dt.date
        if "pressure.N" in flat:
            out["pressure"] = pd.to_numeric(flat["pressure.N"])
        frames.append(out)
    return len(pd.concat(frames))


def main() -> None:
    """Run the stages `BENCH_RUNS` times on `BENCH_READINGS` readings; print medians."""
    n = int(os.environ.get("BENCH_READINGS", "1000000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    emulator = Emulator(port=free_port()).start()
    runner = GlueCrawlerRunner(emulator.endpoint_url).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
            files, _ = _setup(emulator.endpoint_url, Path(tmp), n)
            from pipeline_platform.definitions import build_definitions
            from platform_tools.batch_runs import summarise

            defs = build_definitions()
            job = defs.resolve_implicit_global_asset_job_def()
            dbt_keys = [
                k
                for k in defs.resolve_asset_graph().get_all_asset_keys()
                if k.path[0] in ("staging", "analytics")
            ]
            per_stage: dict[str, list[float]] = {}
            totals = []
            for _ in range(runs):
                instance = dg.DagsterInstance.ephemeral()
                started = time.perf_counter()
                result = job.execute_in_process(
                    instance=instance,
                    run_config=_QUIET,
                    asset_selection=[*STAGES, *dbt_keys],
                    tags={
                        "dagster/asset_partition_range_start": FIRST.isoformat(),
                        "dagster/asset_partition_range_end": LAST.isoformat(),
                    },
                )
                totals.append(time.perf_counter() - started)
                summary = summarise(result, instance)
                assert summary["assets"]["warehouse/raw_sensor_readings"]["rows"] == n, summary
                for asset, entry in summary["assets"].items():
                    per_stage.setdefault(asset, []).append(entry["seconds"])
            shaping_alone = [_time_shaping(files, Path(tmp) / f"shaped-{i}") for i in range(runs)]
            started = time.perf_counter()
            reference_rows = _reference_shaping(files)
            reference = time.perf_counter() - started
            assert reference_rows == n
    finally:
        runner.stop()
        emulator.stop()
    shaping = statistics.median(per_stage["s3/lake/sensor_readings"])
    print(f"readings: {n:,}, runs: {runs} (medians)")
    for asset in (
        "s3/lake/sensor_readings",
        "glue/sensor_readings",
        "warehouse/raw_sensor_readings",
    ):
        print(f"  {asset:40s} {statistics.median(per_stage[asset]):7.2f} s")
    dbt_seconds = statistics.median(per_stage[dbt_keys[0].to_user_string()])
    print(f"  {'dbt (build, all models)':40s} {dbt_seconds:7.2f} s")
    print(f"  {'whole batch side (lake -> marts)':40s} {statistics.median(totals):7.2f} s")
    alone = statistics.median(shaping_alone)
    print(f"  {'shape_readings alone (local files)':40s} {alone:7.2f} s")
    print(f"  {'reference shaping (pandas, once)':40s} {reference:7.2f} s")
    print(f"  {'lake asset speed-up vs reference':40s} {reference / shaping:7.1f} x")
    print(f"  {'shape_readings speed-up vs reference':40s} {reference / alone:7.1f} x")
