"""Shaping reads both export line shapes, types the contract's attributes and every extra field,
and keeps one row per natural key."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime

import duckdb
import pytest

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.lake.shaping import shape_readings

DAY = date(2023, 11, 16)
NOON = 1700136000  # 2023-11-16T12:00:00Z


def _item(device, ts, ingested, temp, **extra):
    item = {
        "device_id": {"S": device},
        "timestamp": {"N": str(ts)},
        "temperature": {"N": str(temp)},
        "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}]},
        "quality_flags": {"L": []},
        "ingested_at": {"N": str(ingested)},
    }
    item.update(extra)
    return item


def _export(path, lines):
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    return str(path)


def _rows(out, columns="*"):
    return duckdb.sql(
        f"select {columns} from read_parquet('{out}/**/*.parquet', hive_partitioning = true, "
        "union_by_name = true) order by all"
    ).fetchall()


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


def test_extra_fields_anywhere_in_the_export_become_typed_columns(tmp_path):
    """GIVEN extra payload fields, one seen only on the last line of the second file, numbers,
    strings, mixed kinds, a boolean and a name that is no portable column, WHEN shaped, THEN each
    portable field is a column (numbers `double`, the rest text or their DynamoDB JSON) and the
    non-portable one is reported and left out."""
    first = _export(
        tmp_path / "a.json.gz",
        [
            {"Item": _item("d1", NOON, NOON, 20, pressure={"N": "1012.5"}, note={"S": "ok"})},
            {"Item": _item("d2", NOON, NOON, 21, mixed={"N": "1"}, door={"BOOL": True})},
            {"Item": _item("d3", NOON, NOON, 22, mixed={"S": "two"}, **{"Bad-Name": {"N": "1"}})},
        ],
    )
    filler = [{"Item": _item(f"f{i}", NOON + i, NOON, 20)} for i in range(2000)]
    last = {"Item": _item("d4", NOON, NOON, 23, battery={"N": "3.7"})}
    second = _export(tmp_path / "b.json.gz", [*filler, last])

    result = shape_readings([first, second], tmp_path / "out", DAY, DAY)

    assert result.extra_columns == {
        "battery": "double",
        "door": "string",
        "mixed": "string",
        "note": "string",
        "pressure": "double",
    }
    assert result.skipped_fields == ("Bad-Name",)
    rows = _rows(
        tmp_path / "out",
        "device_id, pressure, note, mixed, door, battery",
    )
    assert [r for r in rows if not r[0].startswith("f")] == [
        ("d1", 1012.5, "ok", None, None, None),
        ("d2", None, None, '{"N":"1"}', '{"BOOL":true}', None),
        ("d3", None, None, "two", None, None),
        ("d4", None, None, None, None, 3.7),
    ]
    schema = dict(
        duckdb.sql(
            f"select column_name, column_type from (describe select * from "
            f"read_parquet('{tmp_path}/out/**/*.parquet', union_by_name = true))"
        ).fetchall()
    )
    assert schema["pressure"] == "DOUBLE" and schema["battery"] == "DOUBLE"
    assert schema["door"] == "VARCHAR" and schema["mixed"] == "VARCHAR"


def test_fixed_columns_carry_the_warehouse_types_and_joined_codes(tmp_path):
    """GIVEN readings with alerts as a list, as a string set and missing, WHEN shaped, THEN the
    files hold `READINGS_COLUMNS` with their DuckDB types (`dt` as the Hive folder) and the codes
    comma-joined, empty when there are none."""
    export = _export(
        tmp_path / "a.json.gz",
        [
            {"Item": _item("d1", NOON, NOON + 2, 81, humidity={"N": "12.5"})},
            {
                "Item": _item(
                    "d2",
                    NOON + 0.25,
                    NOON + 3,
                    82,
                    alerts={"SS": ["HIGH_TEMPERATURE", "LOW_HUMIDITY"]},
                    quality_flags={"L": [{"S": "COERCED_HUMIDITY"}, {"S": "MISSING_TEMPERATURE"}]},
                    sequence_number={"S": "4960001"},
                )
            },
            {"Item": {"device_id": {"S": "d3"}, "timestamp": {"N": str(NOON)}}},
        ],
    )

    shape_readings([export], tmp_path / "out", DAY, DAY)

    described = duckdb.sql(
        f"select column_name, column_type from (describe select * from "
        f"read_parquet('{tmp_path}/out/**/*.parquet', hive_partitioning = true))"
    ).fetchall()
    assert [(name, kind.lower()) for name, kind in described] == [
        (c.name, c.sql_type("duckdb")) for c in ws.READINGS_COLUMNS
    ]
    assert _rows(tmp_path / "out", "* exclude (dt)") == [
        ("d1", NOON, _ts("12:00:00"), 81.0, 12.5, "HIGH_TEMPERATURE", "", None, _ts("12:00:02")),
        (
            "d2",
            NOON + 0.25,
            _ts("12:00:00.25"),
            82.0,
            None,
            "HIGH_TEMPERATURE,LOW_HUMIDITY",
            "COERCED_HUMIDITY,MISSING_TEMPERATURE",
            "4960001",
            _ts("12:00:03"),
        ),
        ("d3", NOON, _ts("12:00:00"), None, None, "", "", None, None),
    ]


def _ts(clock):
    # Naive UTC, as the files hold timestamps.
    return datetime.fromisoformat(f"2023-11-16T{clock}")


def test_counts_cover_every_image_and_reruns_write_the_same_rows(tmp_path):
    """GIVEN an export with images outside the run's days and two images of one key, WHEN shaped
    twice, THEN the counts say what was exported and kept, only the run's days are written and
    both runs write the same rows."""
    export = _export(
        tmp_path / "a.json.gz",
        [
            {"Item": _item("d1", NOON, NOON + 1, 20)},
            {"Keys": {}, "NewImage": _item("d1", NOON, NOON + 5, 25)},
            {"Item": _item("d2", NOON + 86400, NOON + 86400, 30)},
            {"Item": _item("d3", NOON - 86400, NOON, 10)},
        ],
    )

    first = shape_readings([export], tmp_path / "one", DAY, date(2023, 11, 17))
    second = shape_readings([export], tmp_path / "two", DAY, date(2023, 11, 17))

    assert first.export_items == 4
    assert first.exported_by_day == {"2023-11-16": 2, "2023-11-17": 1}
    assert first.rows_by_day == {"2023-11-16": 1, "2023-11-17": 1}
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [
        "dt=2023-11-16",
        "dt=2023-11-17",
    ]
    assert _rows(tmp_path / "one", "device_id, temperature") == [("d1", 25.0), ("d2", 30.0)]
    assert second == first
    assert _rows(tmp_path / "two") == _rows(tmp_path / "one")


def test_a_line_that_is_not_dynamodb_json_fails_naming_the_file(tmp_path):
    """GIVEN an export line whose attribute is not a DynamoDB attribute value, WHEN shaped, THEN
    shaping stops with an error naming the file, and nothing is written."""
    export = _export(
        tmp_path / "broken.json.gz",
        [{"Item": _item("d1", NOON, NOON, 20)}, {"Item": {"device_id": "d2"}}],
    )

    with pytest.raises(duckdb.InvalidInputException, match=r"broken\.json\.gz"):
        shape_readings([export], tmp_path / "out", DAY, DAY)

    assert not (tmp_path / "out").exists()
