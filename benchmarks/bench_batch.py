"""Shaping and merging 1,000,000 readings, against the common way of reading an export.

The lake step's core, alone, on local files: a full export of the table (8 gzipped
DynamoDB-JSON data files of `{"Item": ...}` lines, as DynamoDB writes them) is read
(`shaping.read_export`) and merged into an empty lake (`merge.merge`), which writes the
Parquet days. In the same invocation a reference written the common way (pandas
`read_json(lines=True)` + `json_normalize`) reads the same files, for the ratio. The
whole batch job on 1,000,000 readings, the export and every stage included, is measured
by `bench_batch_cost` (its first run is the full rebuild).
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
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.lake import merge, shaping
from stream_processor import contract

FIRST, LAST = date(2023, 11, 14), date(2023, 11, 26)
FILES = 8
EXPORT_TIME = datetime(2026, 12, 1, tzinfo=UTC)


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


def _write_export(tmp: Path, n: int) -> list[Path]:
    files = []
    for f in range(FILES):
        path = tmp / f"part-{f}.json.gz"
        lines = _export_lines(n, f * n // FILES, (f + 1) * n // FILES)
        path.write_bytes(gzip.compress(lines.encode(), compresslevel=6))
        files.append(path)
    return files


def _time_lake_step(files: list[Path], out: Path) -> float:
    """Seconds to read the export and merge it into an empty lake; every reading kept."""
    started = time.perf_counter()
    with duckdb.connect() as con:
        read = shaping.read_export(con, [str(p) for p in files], EXPORT_TIME)
        result = merge.merge(con, ws.READINGS, [], out / "lake", out / "changes.parquet", {})
    seconds = time.perf_counter() - started
    assert read.upserts == result.applied == sum(result.rows_by_day.values()), result
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
    """Time the lake step `BENCH_RUNS` times on `BENCH_READINGS` readings; print medians."""
    n = int(os.environ.get("BENCH_READINGS", "1000000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        files = _write_export(Path(tmp), n)
        lake = [_time_lake_step(files, Path(tmp) / f"run-{i}") for i in range(runs)]
        started = time.perf_counter()
        reference_rows = _reference_shaping(files)
        reference = time.perf_counter() - started
        assert reference_rows == n
    step = statistics.median(lake)
    print(f"readings: {n:,}, runs: {runs} (medians)")
    print(f"  {'read + merge into the lake (DuckDB)':40s} {step:7.2f} s")
    print(f"  {'reference shaping (pandas, once)':40s} {reference:7.2f} s")
    print(f"  {'speed-up vs reference':40s} {reference / step:7.1f} x")
