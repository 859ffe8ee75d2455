"""Shaping reads both export line shapes and keeps one row per natural key."""

from __future__ import annotations

import gzip
import json
from datetime import date

import duckdb

from pipeline_platform.defs.lake.shaping import shape_readings


def _item(device, ts, ingested, temp):
    return {
        "device_id": {"S": device},
        "timestamp": {"N": str(ts)},
        "temperature": {"N": str(temp)},
        "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}]},
        "quality_flags": {"L": []},
        "ingested_at": {"N": str(ingested)},
    }


def test_full_and_incremental_lines_shape_into_one_row_per_key(tmp_path):
    """GIVEN a full-export line and an incremental update and delete, WHEN shaped, THEN the newest
    image of each key is one typed row and the deletion yields none."""
    lines = [
        {"Item": _item("d1", 1700100000, 1700100002, 60)},
        {
            "Keys": {"device_id": {"S": "d1"}, "timestamp": {"N": "1700100000"}},
            "NewImage": _item("d1", 1700100000, 1700100009, 61.5),
            "OldImage": _item("d1", 1700100000, 1700100002, 60),
        },
        {"Keys": {"device_id": {"S": "d2"}, "timestamp": {"N": "1700100001"}}, "OldImage": {}},
    ]
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))

    result = shape_readings([str(path)], tmp_path / "out", date(2023, 11, 16), date(2023, 11, 16))

    assert result.rows_by_day == {"2023-11-16": 1}
    rows = duckdb.sql(
        f"select device_id, temperature, alerts, reading_at::varchar "
        f"from read_parquet('{tmp_path}/out/**/*.parquet')"
    ).fetchall()
    assert rows == [("d1", 61.5, "HIGH_TEMPERATURE", "2023-11-16 02:00:00")]
