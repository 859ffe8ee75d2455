"""Shape what the batch side reads (table exports, quarantine lines, rule errors) into rows.

DuckDB parses the files and does the typing in SQL; Python only names the
columns. Each function fills a temporary table of the connection with rows in
the lake's layout (`warehouse_schema`), `dt` included, ready for `merge`.

Table exports come in two line shapes, both gzipped DynamoDB JSON:

- full exports: `{"Item": {...}}`, the table as of the export time;
- incremental exports: `{"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys": {...},
  "NewImage": {...}, "OldImage": {...}}`, the final state of each item changed in
  the window with the time of that write; a line without `NewImage` is a delete.

Each version gets `written_at`: the write time for incremental lines, the export
time for a full export's items (their state as of then). Deletes are counted,
never turned into rows: the table's TTL is its retention, not the lake's.

Export files are read twice: a first pass lists each image's attribute names,
to find the payload fields beyond the contract's; the second reads every image
into a typed struct (the contract's DynamoDB-JSON layout plus those fields), so
each line is parsed once per pass rather than once per attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

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
_METADATA = "struct(WriteTimestampMicros struct(N varchar))"
_READ_OPTIONS = "format = 'newline_delimited', compression = 'gzip', maximum_object_size = 16777216"
_JSON_LINES = "format = 'newline_delimited', maximum_object_size = 16777216"


@dataclass(frozen=True)
class ExportRead:
    """What the export files held: lines by kind, and the payload fields found."""

    lines: int
    upserts: int
    deletes: int
    #: Lines that are neither an item, a new image nor a delete: not an export's.
    unreadable: int
    extra_columns: dict[str, str]  # name -> logical type (`double` or `string`)
    skipped_fields: tuple[str, ...]


def _read_lines(item_type: str) -> str:
    """A `select` of every export line (`?` = the files): its image, write time and keys."""
    columns = {image: item_type for image in _IMAGES} | {"Keys": "json", "Metadata": _METADATA}
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"select coalesce({', '.join(_IMAGES)}) as item, "
        "make_timestamp(cast(Metadata.WriteTimestampMicros.N as bigint)) as written_at, "
        "Keys is not null as has_keys "
        f"from read_json(?, {_READ_OPTIONS}, columns = {{{spec}}})"
    )


def _item_type(extras: list[str]) -> str:
    """The typed struct of an image: the contract's layout, extra fields as raw JSON."""
    fields = [*(f'"{name}" {layout}' for name, layout in _LAYOUT.items())]
    fields += [f'"{name}" json' for name in extras]
    return f"struct({', '.join(fields)})"


def _number(expr: str) -> str:
    return f"try_cast({expr}.N as double)"


def epoch_to_timestamp(expr: str) -> str:
    """SQL: epoch seconds to a naive UTC timestamp, whatever the session's time zone."""
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
        f"select distinct unnest(json_keys(item)) from ({_read_lines('json')})", [export_files]
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
        + " from export_images"
    ).fetchone()
    assert kinds is not None
    return {
        name: "double" if set(found or []) <= {"N", "NULL"} else "string"
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
            f"{epoch_to_timestamp(reading_epoch)} as reading_at",
            f"{_number(_attribute(contract.TEMPERATURE))} as {contract.TEMPERATURE}",
            f"{_number(_attribute(contract.HUMIDITY))} as {contract.HUMIDITY}",
            f"{_codes(_attribute(contract.ALERTS))} as {contract.ALERTS}",
            f"{_codes(_attribute(contract.QUALITY_FLAGS))} as {contract.QUALITY_FLAGS}",
            f"{_attribute(contract.SEQUENCE_NUMBER)}.S as {contract.SEQUENCE_NUMBER}",
            f"{epoch_to_timestamp(_number(_attribute(contract.INGESTED_AT)))} as ingested_at",
            "written_at",
            *(f'{_attribute(name)} as "{name}"' for name in extras),
        ]
    )


def read_export(
    con: duckdb.DuckDBPyConnection,
    export_files: list[str],
    export_time: datetime | None,
    into: str = "incoming",
) -> ExportRead:
    """Fill temp table `into` with one typed row per exported image (`dt` included).

    `export_time` (UTC) is the `written_at` of full-export items, which carry no
    write time of their own. A key may appear more than once (several exports in
    a run); the merge keeps its latest version.
    """
    extra_names, skipped = discover_extra_fields(con, export_files)
    stamp = export_time.replace(tzinfo=None) if export_time else None
    con.execute(
        f"""
        create or replace temp table export_lines as
        select item, coalesce(written_at, cast(? as timestamp)) as written_at, has_keys
        from ({_read_lines(_item_type(extra_names))})
        """,
        [stamp, export_files],
    )
    counts = con.execute(
        "select count(*), count(item), count(*) filter (where item is null and has_keys) "
        "from export_lines"
    ).fetchone()
    assert counts is not None
    lines, upserts, deletes = (int(n) for n in counts)
    con.execute(
        f"create or replace temp view export_images as "
        f"select {_flattened(extra_names)} from export_lines where item is not null"
    )
    extras = _extra_types(con, extra_names)
    typed = [*ws.READINGS.file_columns] + [_extra(n, logical) for n, logical in extras.items()]
    con.execute(
        f"create or replace temp table {into} as "
        f"select {', '.join(typed)}, {ws.READINGS.dt} as dt from export_images"
    )
    con.execute("drop view export_images")
    con.execute("drop table export_lines")
    return ExportRead(lines, upserts, deletes, lines - upserts - deletes, extras, tuple(skipped))


def read_quarantine(
    con: duckdb.DuckDBPyConnection, files: list[str], into: str = "incoming"
) -> int:
    """Fill temp table `into` with the quarantine lines of `files` (`contract.QUARANTINE_FIELDS`).

    Returns the number of lines read; a record quarantined again (a redelivered
    batch) is a second version of its key, the merge keeps the latest.
    """
    spec = "{" + ", ".join(f"'{f}': 'VARCHAR'" for f in contract.QUARANTINE_FIELDS) + "}"
    con.execute(
        f"""
        create or replace temp table {into} as
        select *, {ws.QUARANTINE.dt} as dt from (
            select
                sequence_number, reason, detail, device_id, data as payload_base64,
                partition_key,
                {_time("approximate_arrival_timestamp")} as arrived_at,
                {_time("quarantined_at")} as quarantined_at,
                event_source_arn
            from read_json(?, {_JSON_LINES}, columns = {spec})
        )
        """,
        [files],
    )
    return _count(con, into)


def read_rule_errors(
    con: duckdb.DuckDBPyConnection,
    objects: dict[str, tuple[str, datetime]],
    into: str = "incoming",
) -> int:
    """Fill temp table `into` with the topic rule's error records.

    `objects` maps each local file to its S3 key (the record's id) and its
    `LastModified` (when the error action wrote it: the record has no time of its
    own). Each file holds one error-action message in AWS's shape: `ruleName`,
    `topic`, `clientId`, `base64OriginalPayload`, `failures[{failedAction,
    failedResource, errorMessage}]`.
    """
    con.execute(
        "create or replace temp table rule_error_objects "
        "(path varchar, id varchar, written timestamp)"
    )
    con.executemany(
        "insert into rule_error_objects values (?, ?, ?)",
        [[path, key, at.replace(tzinfo=None)] for path, (key, at) in objects.items()],
    )
    failure = "struct(failedAction varchar, failedResource varchar, errorMessage varchar)"
    spec = (
        "{'ruleName': 'VARCHAR', 'topic': 'VARCHAR', 'clientId': 'VARCHAR', "
        f"'base64OriginalPayload': 'VARCHAR', 'failures': '{failure}[]'}}"
    )
    con.execute(
        f"""
        create or replace temp table {into} as
        select *, {ws.RULE_ERRORS.dt} as dt from (
            select
                o.id as error_id,
                '{contract.TOPIC_RULE_ERROR}' as reason,
                e.ruleName as rule_name,
                e.topic,
                e.clientId as client_id,
                e.base64OriginalPayload as payload_base64,
                e.failures[1].failedAction as failed_action,
                e.failures[1].failedResource as failed_resource,
                array_to_string(list_transform(e.failures, lambda f: f.errorMessage), ' | ')
                    as error_message,
                o.written as errored_at
            from read_json(?, format = 'auto', columns = {spec}, filename = true) e
            join rule_error_objects o on o.path = e.filename
        )
        """,
        [list(objects)],
    )
    con.execute("drop table rule_error_objects")
    return _count(con, into)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    found = con.execute(f"select count(*) from {table}").fetchone()
    assert found is not None
    return int(found[0])


def _time(field: str) -> str:
    # Epoch seconds (as the stream reports them) or an ISO-8601 string.
    return (
        f"coalesce({epoch_to_timestamp(f'try_cast({field} as double)')}, "
        f"cast(try_cast({field} as timestamptz) at time zone 'UTC' as timestamp))"
    )
