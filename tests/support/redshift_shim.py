"""What PostgreSQL cannot run of the SQL a Redshift deployment sends, and what stands in for it.

The tests run the Redshift warehouse resource and dbt's Redshift target on
PostgreSQL (through `redshift_proxy`). Every statement they send runs as sent,
except for the few below, rewritten here and only here:

- `REWRITES`: Redshift-only syntax in otherwise portable statements, each with why;
- `CopyFromS3`: Redshift's `COPY ... FROM 's3://...' ... FORMAT AS PARQUET MANIFEST`,
  which reads the manifest and its Parquet files from the local cloud's S3 and
  inserts their rows as Redshift would load them (columns by position, `FILLRECORD`
  filling a file's missing trailing columns with nulls, each value typed as its
  Parquet column so a type the table's column cannot take fails the load);
- `CATALOG_STUBS`: Redshift's functions and catalog views that statements call,
  created once per database, each with why.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Rewrite:
    """One textual rewrite of a statement, and why PostgreSQL needs it."""

    name: str
    pattern: re.Pattern[str]
    replacement: str
    why: str

    def apply(self, sql: str) -> str:
        """`sql` with every match replaced."""
        return self.pattern.sub(self.replacement, sql)


def _clause(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


#: Every rewrite of a statement other than COPY, in the order applied.
REWRITES = (
    Rewrite(
        "distribution style",
        _clause(r"\bdiststyle\s+(?:all|even|key|auto)\b"),
        "",
        "dbt-redshift's table DDL for `dist=` (`diststyle all`, `diststyle key`): how Redshift "
        "spreads rows over its slices; PostgreSQL has one node and no such clause.",
    ),
    Rewrite(
        "distribution key",
        _clause(r"\bdistkey\s*\([^)]*\)"),
        "",
        "dbt-redshift's table DDL for `dist='<column>'`: the column rows are spread by.",
    ),
    Rewrite(
        "sort key",
        _clause(r"\b(?:compound\s+|interleaved\s+)?sortkey\s*\([^)]*\)"),
        "",
        "dbt-redshift's table DDL for `sort=`: Redshift's zone maps; PostgreSQL has none.",
    ),
    Rewrite(
        "bare date part",
        _clause(r"\b(dateadd|datediff)\s*\(\s*([a-z]+)\s*,"),
        r"\1('\2',",
        "dbt-redshift's `dateadd(hour, n, ts)` names the date part as a bare word, which "
        "PostgreSQL would read as a column; quoted, it reaches the `dateadd` stub below.",
    ),
)


@dataclass(frozen=True)
class Stub:
    """A Redshift function or catalog view PostgreSQL lacks, and why a statement needs it."""

    name: str
    ddl: str
    why: str


#: Created in `pg_catalog` (the server allows it), so that they resolve as built-ins do.
CATALOG_STUBS = (
    Stub(
        "getdate()",
        "create or replace function pg_catalog.getdate() returns timestamp language sql "
        "stable as $$ select localtimestamp $$",
        "dbt-redshift's `current_timestamp()`; the session time zone is UTC, as on Redshift.",
    ),
    Stub(
        "dateadd(part, n, timestamp)",
        "create or replace function pg_catalog.dateadd(part text, n bigint, value timestamp) "
        "returns timestamp language sql immutable as "
        "$$ select value + n * ('1 ' || part)::interval $$",
        "dbt-redshift's `dateadd()` (its date part quoted by the rewrite above).",
    ),
    Stub(
        "pg_get_late_binding_view_cols()",
        "create or replace function pg_catalog.pg_get_late_binding_view_cols() "
        "returns setof record language sql stable as "
        "$$ select null::name, null::name, null::name, null::varchar, null::int where false $$",
        "dbt-redshift's column lookup unions the columns of late-binding views; the project "
        "makes none (its views bind), so there are none to list.",
    ),
    Stub(
        "svv_external_columns",
        "create or replace view pg_catalog.svv_external_columns as select null::int as "
        "columnnum, null::varchar as schemaname, null::varchar as tablename, null::varchar as "
        "columnname, null::varchar as external_type where false",
        "dbt-redshift's column lookup unions Spectrum's external tables' columns; the project "
        "has no external schema.",
    ),
)


def stub_statements() -> list[str]:
    """The DDL that adds `CATALOG_STUBS` to a database."""
    return [stub.ddl for stub in CATALOG_STUBS]


class CopyRefused(RuntimeError):
    """A COPY Redshift would refuse; the message says why."""


#: `COPY <table> FROM 's3://<bucket>/<key>' <options>`: the only COPY Redshift runs here.
_COPY = re.compile(
    r"^\s*copy\s+(?P<table>[\w.\"]+)\s*(?P<columns>\([^)]*\))?\s+from\s+"
    r"'s3://(?P<bucket>[^/']+)/(?P<key>[^']+)'(?P<options>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_IAM_ROLE = re.compile(
    r"(?:aws_iam_role=|iam_role\s+')arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.IGNORECASE
)
_OPTION_WORDS = re.compile(r"'[^']*'|\w+")
#: What Redshift accepts with `FORMAT AS PARQUET` (its "COPY from columnar data formats").
_PARQUET_OPTIONS = frozenset(
    {
        "with",
        "credentials",
        "as",
        "iam_role",
        "format",
        "parquet",
        "manifest",
        "fillrecord",
        "acceptinvchars",
        "statupdate",
        "explicit_ids",
        "on",
        "off",
        "true",
        "false",
    }
)


@dataclass(frozen=True)
class CopyFromS3:
    """One `COPY ... FROM 's3://...' FORMAT AS PARQUET MANIFEST`, parsed."""

    table: str
    columns: str | None
    bucket: str
    key: str
    fill_record: bool

    @classmethod
    def parse(cls, sql: str) -> CopyFromS3 | None:
        """The COPY `sql` is, or None when it is no COPY from S3; CopyRefused for options
        Redshift refuses with Parquet."""
        found = _COPY.match(_without_comments(sql))
        if not found:
            return None
        options = found["options"]
        if not _IAM_ROLE.search(options):
            raise CopyRefused("COPY from S3 needs an IAM role (aws_iam_role= or IAM_ROLE)")
        words = {w.lower() for w in _OPTION_WORDS.findall(options) if not w.startswith("'")}
        if not {"format", "parquet"} <= words:
            raise CopyRefused("only FORMAT AS PARQUET is loaded here (the lake's format)")
        if "manifest" not in words:
            raise CopyRefused("the load names its files in a manifest (MANIFEST)")
        unsupported = words - _PARQUET_OPTIONS
        if unsupported:
            raise CopyRefused(
                f"COPY from Parquet does not support: {', '.join(sorted(unsupported))}"
            )
        return cls(
            found["table"],
            found["columns"],
            found["bucket"],
            found["key"],
            "fillrecord" in words,
        )

    def insert_statement(self, read_object: Callable[[str, str], bytes]) -> str:
        """One statement that loads what the COPY loads, in the session that sent it (its
        stage may be a temporary table): a `DO` block that checks the table's column count
        against every file (as COPY does) and inserts the files' rows.

        `read_object(bucket, key)` returns an S3 object's bytes.
        """
        manifest = json.loads(read_object(self.bucket, self.key))
        files = [_parquet_entry(entry, read_object) for entry in manifest.get("entries", [])]
        widths = sorted({table.num_columns for table in files})
        rows = [row for table in files for row in _literal_rows(table)]
        tag = f"copy_{secrets.token_hex(4)}"
        # The width COPY checks the files against: the column list's, else the table's.
        width = (
            f"width := {len(self.columns.strip('()').split(','))};"
            if self.columns
            else f"select count(*) into width from pg_attribute where attrelid = "
            f"'{self.table}'::regclass and attnum > 0 and not attisdropped;"
        )
        if not widths:
            width_check = ""
        elif self.fill_record:
            width_check = (
                f"if width < {widths[-1]} then raise exception "
                f"'COPY: a file has {widths[-1]} columns, the table %', width; end if;"
            )
        else:
            width_check = (
                f"if width <> any(array[{','.join(map(str, widths))}]) then raise exception "
                f"'COPY: files have {widths} columns, the table % (no FILLRECORD)', width; "
                "end if;"
            )
        target = f"{self.table} {self.columns or ''}"
        longest = max(widths, default=0)
        values = ",\n".join(
            "(" + ", ".join(row + ["null"] * (longest - len(row))) + ")" for row in rows
        )
        insert = f"insert into {target} values {values};" if rows else ""
        return f"do ${tag}$ declare width int; begin {width} {width_check} {insert} end ${tag}$"


def _without_comments(sql: str) -> str:
    return re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL).strip()


def _parquet_entry(entry: dict[str, Any], read_object: Callable[[str, str], bytes]) -> pa.Table:
    url = entry.get("url", "")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    length = entry.get("meta", {}).get("content_length")
    if length is None:
        raise CopyRefused(f"manifest entry {url} has no meta.content_length (Parquet needs it)")
    try:
        body = read_object(bucket, key)
    except KeyError:
        if entry.get("mandatory", False):
            raise CopyRefused(f"mandatory file {url} of the manifest does not exist") from None
        return pa.table({})
    if len(body) != int(length):
        raise CopyRefused(f"{url}: content_length {length} but the object has {len(body)} bytes")
    return pq.read_table(pa.BufferReader(body))


def _literal_rows(table: pa.Table) -> Iterable[list[str]]:
    """Each row of `table` as SQL literals typed as their Parquet columns, in file order."""
    formats = [_literal_format(field.type) for field in table.schema]
    columns = [column.to_pylist() for column in table.columns]
    for values in zip(*columns, strict=True):
        yield [
            "null" if value is None else fmt(value)
            for fmt, value in zip(formats, values, strict=True)
        ]


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _double(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return f"'{value}'::double precision"
    return f"{value!r}::double precision"


def _timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"'{value.isoformat(sep=' ')}'::timestamp"


def _literal_format(kind: pa.DataType) -> Callable[[Any], str]:
    """How a value of Parquet (Arrow) type `kind` is written as a typed SQL literal."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return lambda v: f"{_text(v)}::varchar"
    if pa.types.is_floating(kind):
        return _double
    if pa.types.is_integer(kind):
        return lambda v: f"{int(v)}::bigint"
    if pa.types.is_boolean(kind):
        return lambda v: "true" if v else "false"
    if pa.types.is_timestamp(kind):
        return _timestamp
    if pa.types.is_date(kind):
        return lambda v: f"'{date.isoformat(v)}'::date"
    if pa.types.is_decimal(kind):
        return lambda v: f"'{Decimal(v)}'::numeric"
    raise CopyRefused(f"Parquet type {kind} is not loaded by this shim")


def raising(message: str) -> str:
    """A statement that fails with `message`, as the server would fail the refused one."""
    return f"do $raise$ begin raise exception '%', {_text(message)}; end $raise$"


def rewrite(sql: str, read_object: Callable[[str, str], bytes]) -> str:
    """The statement PostgreSQL runs for `sql`: a COPY from S3 as its rows, else `sql` with
    `REWRITES` applied."""
    try:
        copy = CopyFromS3.parse(sql)
        if copy is not None:
            return copy.insert_statement(read_object)
    except CopyRefused as refused:
        return raising(f"COPY refused: {refused}")
    for each in REWRITES:
        sql = each.apply(sql)
    return sql
