"""Shaping reads what the batch side takes in, in AWS's formats: both export line shapes (full
`Item` lines, incremental `Metadata`/`Keys`/`NewImage`/`OldImage` lines), the function's
quarantine lines and the topic rule's error records; it types the contract's attributes and
every extra payload field."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs.lake import merge, shaping
from stream_processor import contract

NOON = 1700136000  # 2023-11-16T12:00:00Z
EXPORT_TIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def item(device, ts, ingested, temp, **extra):
    """A stored reading as DynamoDB JSON, as the stream processor writes it."""
    found = {
        "device_id": {"S": device},
        "timestamp": {"N": str(ts)},
        "temperature": {"N": str(temp)},
        "alerts": {"L": [{"S": "HIGH_TEMPERATURE"}]},
        "quality_flags": {"L": []},
        "ingested_at": {"N": str(ingested)},
    }
    found.update(extra)
    return found


def change(image: dict | None, micros: int, old: dict | None = None) -> dict:
    """An incremental export line: a write at `micros`; no `image` means a delete."""
    source = image or old or {}
    line: dict = {
        "Metadata": {"WriteTimestampMicros": {"N": str(micros)}},
        "Keys": {"device_id": source["device_id"], "timestamp": source["timestamp"]},
    }
    if image is not None:
        line["NewImage"] = image
    if old is not None:
        line["OldImage"] = old
    return line


def export_file(path: Path, lines: list[dict]) -> str:
    """A gzipped DynamoDB-JSON data file, as an export writes one."""
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    return str(path)


def written(out: Path, columns: str = "*") -> list[tuple]:
    """The rows of the Parquet files a merge wrote, sorted."""
    return duckdb.execute(
        f"select {columns} from read_parquet('{out}/**/*.parquet', hive_partitioning = true, "
        "union_by_name = true) order by all"
    ).fetchall()


def shape_and_merge(tmp: Path, files: list[str], export_time=None) -> merge.MergeResult:
    """Read `files` as one run's exports and merge them into an empty lake under `tmp/out`."""
    with duckdb.connect() as con:
        shaping.read_export(con, files, export_time)
        return merge.merge(con, ws.READINGS, [], tmp / "out", tmp / "changes.parquet", {})


def test_incremental_lines_carry_their_write_time_and_a_delete_is_counted_not_shaped(tmp_path):
    """GIVEN an incremental export with an insert, an update (new and old image) and a delete
    WHEN read THEN three lines: two versions with the write time of their line, one delete that
    yields no row."""
    new = item("d1", NOON, NOON + 2, 60)
    updated = item("d2", NOON, NOON + 9, 61.5)
    deleted = item("d3", NOON, NOON, 10)
    path = export_file(
        tmp_path / "inc.json.gz",
        [
            change(new, 1764579600_000000),
            change(updated, 1764579601_250000, old=item("d2", NOON, NOON, 50)),
            change(None, 1764579602_000000, old=deleted),
        ],
    )

    with duckdb.connect() as con:
        read = shaping.read_export(con, [path], None)
        rows = con.execute(
            "select device_id, temperature, cast(written_at as varchar) from incoming order by 1"
        ).fetchall()

    assert (read.lines, read.upserts, read.deletes, read.unreadable) == (3, 2, 1, 0)
    assert rows == [
        ("d1", 60.0, "2025-12-01 09:00:00"),
        ("d2", 61.5, "2025-12-01 09:00:01.25"),
    ]


def test_full_export_items_are_versions_as_of_the_export_time(tmp_path):
    """GIVEN a full export WHEN read with its export time THEN each item is a version written
    then: the table's state as of the export."""
    path = export_file(tmp_path / "full.json.gz", [{"Item": item("d1", NOON, NOON + 2, 60)}])

    with duckdb.connect() as con:
        read = shaping.read_export(con, [path], EXPORT_TIME)
        (stamp,) = con.execute("select written_at from incoming").fetchone()

    assert (read.lines, read.upserts, read.deletes) == (1, 1, 0)
    assert stamp == EXPORT_TIME.replace(tzinfo=None)


def test_extra_fields_anywhere_in_the_export_become_typed_columns(tmp_path):
    """GIVEN extra payload fields, one seen only on the last line of the second file, numbers,
    strings, mixed kinds, a boolean and a name that is no portable column, WHEN shaped, THEN each
    portable field is a column (numbers `double`, the rest text or their DynamoDB JSON) and the
    non-portable one is reported and left out."""
    first = export_file(
        tmp_path / "a.json.gz",
        [
            {"Item": item("d1", NOON, NOON, 20, pressure={"N": "1012.5"}, note={"S": "ok"})},
            {"Item": item("d2", NOON, NOON, 21, mixed={"N": "1"}, door={"BOOL": True})},
            {"Item": item("d3", NOON, NOON, 22, mixed={"S": "two"}, **{"Bad-Name": {"N": "1"}})},
        ],
    )
    filler = [{"Item": item(f"f{i}", NOON + i, NOON, 20)} for i in range(2000)]
    last = {"Item": item("d4", NOON, NOON, 23, battery={"N": "3.7"})}
    second = export_file(tmp_path / "b.json.gz", [*filler, last])

    with duckdb.connect() as con:
        read = shaping.read_export(con, [first, second], EXPORT_TIME)
        rows = con.execute(
            "select device_id, pressure, note, mixed, door, battery from incoming "
            "where device_id like 'd%' order by 1"
        ).fetchall()

    assert read.extra_columns == {
        "battery": "double",
        "door": "string",
        "mixed": "string",
        "note": "string",
        "pressure": "double",
    }
    assert read.skipped_fields == ("Bad-Name",)
    assert rows == [
        ("d1", 1012.5, "ok", None, None, None),
        ("d2", None, None, '{"N":"1"}', '{"BOOL":true}', None),
        ("d3", None, None, "two", None, None),
        ("d4", None, None, None, None, 3.7),
    ]


def _ts(clock):
    # Naive UTC, as the files hold timestamps.
    return datetime.fromisoformat(f"2023-11-16T{clock}")


def test_lake_files_carry_the_warehouse_types_and_joined_codes(tmp_path):
    """GIVEN readings with alerts as a list, as a string set and missing, WHEN shaped and merged,
    THEN the files hold the readings' columns with their DuckDB types (`dt` as the Hive folder)
    and the codes comma-joined, empty when there are none."""
    export = export_file(
        tmp_path / "a.json.gz",
        [
            {"Item": item("d1", NOON, NOON + 2, 81, humidity={"N": "12.5"})},
            {
                "Item": item(
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

    shape_and_merge(tmp_path, [export], EXPORT_TIME)

    described = duckdb.execute(
        f"select column_name, column_type from (describe select * from "
        f"read_parquet('{tmp_path}/out/**/*.parquet', hive_partitioning = true))"
    ).fetchall()
    assert [(name, kind.lower()) for name, kind in described] == [
        (c.name, c.sql_type("duckdb")) for c in ws.READINGS_COLUMNS
    ]
    stamp = EXPORT_TIME.replace(tzinfo=None)
    assert written(tmp_path / "out", "* exclude (dt)") == [
        (
            "d1",
            NOON,
            _ts("12:00:00"),
            81.0,
            12.5,
            "HIGH_TEMPERATURE",
            "",
            None,
            _ts("12:00:02"),
            stamp,
        ),
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
            stamp,
        ),
        ("d3", NOON, _ts("12:00:00"), None, None, "", "", None, None, stamp),
    ]


def test_a_line_that_is_not_dynamodb_json_fails_naming_the_file(tmp_path):
    """GIVEN an export line whose attribute is not a DynamoDB attribute value, WHEN shaped, THEN
    shaping stops with an error naming the file, and nothing is written."""
    export = export_file(
        tmp_path / "broken.json.gz",
        [{"Item": item("d1", NOON, NOON, 20)}, {"Item": {"device_id": "d2"}}],
    )

    with pytest.raises(duckdb.InvalidInputException, match=r"broken\.json\.gz"):
        shape_and_merge(tmp_path, [export], EXPORT_TIME)

    assert not (tmp_path / "out").exists()


def test_quarantine_lines_are_typed_and_filed_under_their_arrival_day(tmp_path):
    """GIVEN two quarantine lines as the stream processor writes them, one without an arrival
    time WHEN read THEN their times are timestamps and each row's day is its arrival day, else
    the day it was quarantined."""
    lines = [
        {
            "reason": contract.INVALID_JSON,
            "detail": "not JSON",
            "device_id": None,
            "data": "SW52YWxpZA==",
            "sequence_number": "1",
            "partition_key": "sensor-1",
            "approximate_arrival_timestamp": NOON,
            "event_source_arn": "arn:aws:kinesis:ap-southeast-2:1:stream/s",
            "quarantined_at": "2023-11-17T00:00:01.000+00:00",
        },
        {
            "reason": contract.MISSING_DEVICE_ID,
            "sequence_number": "2",
            "quarantined_at": "2023-11-18T08:00:00+00:00",
        },
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    with duckdb.connect() as con:
        count = shaping.read_quarantine(con, [str(path)])
        rows = con.execute(
            "select sequence_number, arrived_at, quarantined_at, cast(dt as varchar) "
            "from incoming order by 1"
        ).fetchall()

    assert count == 2
    assert rows == [
        ("1", _ts("12:00:00"), datetime(2023, 11, 17, 0, 0, 1), "2023-11-16"),
        ("2", None, datetime(2023, 11, 18, 8, 0), "2023-11-18"),
    ]


def test_a_rule_error_is_a_row_with_its_payload_topic_client_and_failure(tmp_path):
    """GIVEN an error-action record as AWS writes it (one JSON object per S3 object) WHEN read
    THEN one row keyed by its object, with the reason code TOPIC_RULE_ERROR, the original
    payload, topic, client id, the failure and the time the object was written."""
    record = {
        "ruleName": "rule_dev_sensors",
        "topic": "iot/sensors",
        "cloudwatchTraceId": "abc",
        "clientId": "sensor-0007",
        "base64OriginalPayload": base64.b64encode(b"Invalid JSON Data").decode(),
        "failures": [
            {
                "failedAction": "KinesisAction",
                "failedResource": "kinesis-dev-apse2-iotdata-01",
                "errorMessage": "Failed to put record in Kinesis stream.",
            }
        ],
    }
    path = tmp_path / "e.json"
    path.write_text(json.dumps(record, indent=2))
    at = datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC)

    with duckdb.connect() as con:
        count = shaping.read_rule_errors(con, {str(path): ("errors/1-abc.json", at)})
        row = con.execute(
            f"select {', '.join(ws.RULE_ERRORS.column_names)} from incoming"
        ).fetchone()

    assert count == 1
    assert row == (
        "errors/1-abc.json",
        contract.TOPIC_RULE_ERROR,
        "rule_dev_sensors",
        "iot/sensors",
        "sensor-0007",
        record["base64OriginalPayload"],
        "KinesisAction",
        "kinesis-dev-apse2-iotdata-01",
        "Failed to put record in Kinesis stream.",
        at.replace(tzinfo=None),
        datetime(2026, 12, 1).date(),
    )
