"""Shape a DynamoDB export (gzipped DynamoDB-JSON lines) into typed, date-partitioned Parquet.

DuckDB parses the gzipped lines and does the typing in SQL; Python only names
the columns. Both export line shapes are read: full exports' `{"Item": ...}`
and incremental exports' `{"Keys", "NewImage", "OldImage"}` (a line without
`NewImage` is a deletion and yields no row).

The files are read twice: a first pass only lists each image's attribute
names, to find the payload fields beyond the contract's; the second reads every
image into a typed struct (the contract's DynamoDB-JSON layout plus those
fields), so each line is parsed once per pass rather than once per attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipeline_platform import warehouse_schema as ws
from stream_processor import contract

# Item attributes that are not lake columns of their own: the TTL and the
# alerts-index key are operational, the sort key becomes `reading_epoch`.
_NOT_COLUMNS = {contract.EXPIRES_AT, contract.ALERT_DATE, contract.TIMESTAMP}
_KNOWN = {c.name for c in ws.READINGS_COLUMNS} | _NOT_COLUMNS
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")

# DynamoDB-JSON layout of the contract's attributes. Read as typed structs, a
# line is parsed once; extracting each attribute from a JSON column instead
# re-parses the whole item per attribute. A line that does not fit the layout
# (an attribute value that is not an object) is not DynamoDB JSON: reading fails
# naming the file and line rather than guessing.
_NUMBER = "struct(N varchar)"
_STRING = "struct(S varchar)"
# Codes are stored as a list of strings; a string set is read the same way.
_CODES = "struct(L struct(S varchar)[], SS varchar[])"
_LAYOUT = {
    contract.DEVICE_ID: _STRING,
    contract.TIMESTAMP: _NUMBER,
    contract.TEMPERATURE: _NUMBER,
    contract.HUMIDITY: _NUMBER,
    contract.ALERTS: _CODES,
    contract.QUALITY_FLAGS: _CODES,
    contract.SEQUENCE_NUMBER: _STRING,
    contract.INGESTED_AT: _NUMBER,
}
# Both export line shapes: full exports' `Item`, incremental exports' `NewImage`.
_IMAGES = ("Item", "NewImage")
_READ_OPTIONS = "format = 'newline_delimited', compression = 'gzip', maximum_object_size = 16777216"


@dataclass(frozen=True)
class ShapeResult:
    """What a shaping run wrote: rows per day and the extra payload columns found."""

    rows_by_day: dict[str, int]
    extra_columns: dict[str, str]  # name -> logical type (`double` or `string`)
    export_items: int
    skipped_fields: tuple[str, ...]
    #: Export items (images) dated in each day, before one row per natural key is kept.
    exported_by_day: dict[str, int]


def _read_images(item_type: str) -> str:
    """A `select` of every exported image (`item`, of `item_type`) from the files (`?`)."""
    columns = ", ".join(f"'{image}': '{item_type}'" for image in _IMAGES)
    return (
        f"select coalesce({', '.join(_IMAGES)}) as item "
        f"from read_json(?, {_READ_OPTIONS}, columns = {{{columns}}})"
    )


def _item_type(extras: list[str]) -> str:
    """The typed struct of an image: the contract's layout, extra fields as raw JSON."""
    fields = [*(f'"{name}" {layout}' for name, layout in _LAYOUT.items())]
    fields += [f'"{name}" json' for name in extras]
    return f"struct({', '.join(fields)})"


def _number(expr: str) -> str:
    return f"try_cast({expr}.N as double)"


def _epoch_to_timestamp(expr: str) -> str:
    # make_timestamp(microseconds) yields a naive UTC timestamp regardless of the session zone.
    return f"make_timestamp(cast(round({expr} * 1000000) as bigint))"


def _codes(expr: str) -> str:
    return (
        f"array_to_string(coalesce(list_transform({expr}.L, lambda code: code.S), {expr}.SS, []), "
        f"'{ws.CODE_SEPARATOR}')"
    )


def _extra(name: str, logical: str) -> str:
    value = f'"{name}"'
    if logical == "double":
        return f"try_cast({value} ->> 'N' as double) as \"{name}\""
    # Strings as they are; anything else (bool, list, map) as its DynamoDB JSON.
    return f"coalesce({value} ->> 'S', cast({value} as varchar)) as \"{name}\""


def discover_extra_fields(
    con: duckdb.DuckDBPyConnection, export_files: list[str]
) -> tuple[list[str], list[str]]:
    """Names of the payload fields beyond the contract's in any image, and those left out.

    A cheap pass of its own: listing an image's keys parses it once and builds no values.
    """
    rows = con.execute(
        f"select distinct unnest(json_keys(item)) from ({_read_images('json')})", [export_files]
    ).fetchall()
    extras: list[str] = []
    skipped: list[str] = []
    for (name,) in sorted(rows):
        if name in _KNOWN:
            continue
        if _IDENTIFIER.match(name):
            extras.append(name)
        else:
            skipped.append(name)  # not a portable column name; kept in DynamoDB only
    return extras, skipped


def _extra_types(con: duckdb.DuckDBPyConnection, extras: list[str]) -> dict[str, str]:
    """Each extra field typed `double` when every value is a number, else `string`."""
    if not extras:
        return {}
    kinds = con.execute(
        "select "
        + ", ".join(f'list_distinct(list(json_keys("{name}")[1]))' for name in extras)
        + " from export_items"
    ).fetchone()
    return {
        name: "double" if set(found) <= {"N", "NULL"} else "string"
        for name, found in zip(extras, kinds, strict=True)
    }


def _attribute(name: str) -> str:
    return f'item."{name}"'


def _flattened(extras: list[str]) -> str:
    """The image's columns: the contract's typed, extra fields still as their DynamoDB JSON."""
    reading_epoch = _number(_attribute(contract.TIMESTAMP))
    return ", ".join(
        [
            f"{_attribute(contract.DEVICE_ID)}.S as {contract.DEVICE_ID}",
            f"{reading_epoch} as reading_epoch",
            f"{_epoch_to_timestamp(reading_epoch)} as reading_at",
            f"{_number(_attribute(contract.TEMPERATURE))} as {contract.TEMPERATURE}",
            f"{_number(_attribute(contract.HUMIDITY))} as {contract.HUMIDITY}",
            f"{_codes(_attribute(contract.ALERTS))} as {contract.ALERTS}",
            f"{_codes(_attribute(contract.QUALITY_FLAGS))} as {contract.QUALITY_FLAGS}",
            f"{_attribute(contract.SEQUENCE_NUMBER)}.S as {contract.SEQUENCE_NUMBER}",
            f"{_epoch_to_timestamp(_number(_attribute(contract.INGESTED_AT)))} as ingested_at",
            *(f'{_attribute(name)} as "{name}"' for name in extras),
        ]
    )


def shape_readings(
    export_files: list[str], out_dir: Path, first_day: date, last_day: date
) -> ShapeResult:
    """Write readings dated `first_day`..`last_day` as Parquet under `out_dir/dt=YYYY-MM-DD/`.

    One row per natural key (the latest ingested image wins if an export holds
    several). The `dt` column is the Hive folder, not a column in the files.
    """
    con = duckdb.connect()
    try:
        con.execute("set preserve_insertion_order = false")
        extra_names, skipped = discover_extra_fields(con, export_files)
        con.execute(
            f"""
            create temp table export_items as
            select *, cast(reading_at as date) as dt from (
                select {_flattened(extra_names)}
                from ({_read_images(_item_type(extra_names))}) where item is not null
            )
            """,
            [export_files],
        )
        export_items = con.execute("select count(*) from export_items").fetchone()[0]
        extras = _extra_types(con, extra_names)
        in_days = "dt between ? and ?"
        counts = con.execute(
            f"""
            select cast(dt as varchar), count(*),
                   count(distinct row({", ".join(ws.READINGS_KEY)}))
            from export_items where {in_days} group by dt
            """,
            [first_day, last_day],
        ).fetchall()
        exported = {day: images for day, images, _ in counts}
        rows = {day: keys for day, _, keys in counts}
        # A full export holds each key once; only repeated keys need the window.
        latest = (
            ""
            if exported == rows
            else f"""
            qualify row_number() over (
                partition by {", ".join(ws.READINGS_KEY)} order by ingested_at desc nulls last
            ) = 1"""
        )
        typed = [c.name for c in ws.READINGS_COLUMNS] + [
            _extra(name, logical) for name, logical in extras.items()
        ]
        out_dir.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""
            copy (select {", ".join(typed)} from export_items where {in_days} {latest})
            to '{out_dir.as_posix()}' (format parquet, compression zstd, partition_by (dt),
                                       filename_pattern 'part-{{i}}', overwrite_or_ignore true)
            """,
            [first_day, last_day],
        )
    finally:
        con.close()
    return ShapeResult(rows, extras, int(export_items), tuple(skipped), exported)


def shape_quarantine(files_by_day: dict[date, list[str]], out_dir: Path) -> dict[str, int]:
    """Write quarantine JSON lines (fields of `contract.QUARANTINE_FIELDS`) as Parquet by day."""
    con = duckdb.connect()
    try:
        parts = []
        params: list = []
        for day, files in sorted(files_by_day.items()):
            if not files:
                continue
            spec = "{" + ", ".join(f"'{f}': 'VARCHAR'" for f in contract.QUARANTINE_FIELDS) + "}"
            parts.append(
                f"select *, cast(? as date) as dt from read_json(?, format = 'newline_delimited', "
                f"columns = {spec})"
            )
            params += [day, files]
        rows: dict[str, int] = {}
        if not parts:
            return rows
        con.execute(
            f"""
            create temp table quarantined as
            select
                sequence_number, reason, detail, device_id, data as payload_base64, partition_key,
                {_time("approximate_arrival_timestamp")} as arrived_at,
                {_time("quarantined_at")} as quarantined_at,
                event_source_arn, dt
            from ({" union all ".join(parts)})
            qualify row_number() over (partition by {", ".join(ws.QUARANTINE_KEY)}
                                       order by quarantined_at desc nulls last) = 1
            """,
            params,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy quarantined to '{out_dir.as_posix()}' (format parquet, compression zstd, "
            "partition_by (dt), filename_pattern 'part-{i}', overwrite_or_ignore true)"
        )
        rows = dict(
            con.execute(
                "select cast(dt as varchar), count(*) from quarantined group by dt"
            ).fetchall()
        )
    finally:
        con.close()
    return rows


def _time(field: str) -> str:
    # Epoch seconds (as the stream reports them) or an ISO-8601 string.
    return (
        f"coalesce({_epoch_to_timestamp(f'try_cast({field} as double)')}, "
        f"cast(try_cast({field} as timestamptz) at time zone 'UTC' as timestamp))"
    )
