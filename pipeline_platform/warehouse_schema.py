"""The lake and warehouse layout of readings, derived from the reading contract.

The stream processor's contract names the attributes; this module says how
they land as columns in the Parquet lake, in `raw.sensor_readings`,
`raw.quarantined_records` and `raw.rule_errors` (Redshift and the local DuckDB
alike), and, per table, its natural key, the column that orders its versions
and how its reading day (`dt`, the lake partition) follows from a row. The dbt
sources describe these tables; the lake merge and the loaders work from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_processor import contract

RAW_SCHEMA = "raw"
READINGS_TABLE = "sensor_readings"
QUARANTINE_TABLE = "quarantined_records"
RULE_ERRORS_TABLE = "rule_errors"
#: The pipeline's own bookkeeping in the warehouse (which lake versions are loaded, which
#: reading hours dbt has still to rebuild): not data for analysts.
STATE_SCHEMA = "pipeline"

# Separator of the codes in the `alerts` and `quality_flags` columns. A plain
# string keeps the column portable between Redshift and DuckDB; dbt tests the
# codes against the contract's accepted values.
CODE_SEPARATOR = ","

# Logical column types and their spelling in each warehouse dialect.
_TYPES = {
    "string": {"duckdb": "varchar", "redshift": "varchar(65535)"},
    "double": {"duckdb": "double", "redshift": "double precision"},
    "timestamp": {"duckdb": "timestamp", "redshift": "timestamp"},
    "date": {"duckdb": "date", "redshift": "date"},
}


@dataclass(frozen=True)
class Column:
    """One column of a lake/warehouse table."""

    name: str
    type: str  # a key of _TYPES
    description: str
    nullable: bool = True

    def sql_type(self, dialect: str) -> str:
        """The column's type in `dialect` (`duckdb` or `redshift`)."""
        return _TYPES[self.type][dialect]


READINGS_COLUMNS: tuple[Column, ...] = (
    Column(contract.DEVICE_ID, "string", "Device that sent the reading.", nullable=False),
    Column(
        "reading_epoch",
        "double",
        f"Reading time in epoch seconds: the `{contract.TIMESTAMP}` sort key as stored.",
        nullable=False,
    ),
    Column("reading_at", "timestamp", "Reading time, UTC.", nullable=False),
    Column(contract.TEMPERATURE, "double", "Temperature in degrees C; null when missing."),
    Column(contract.HUMIDITY, "double", "Relative humidity in percent; null when missing."),
    Column(contract.ALERTS, "string", "Alert codes, comma-separated; empty when none."),
    Column(
        contract.QUALITY_FLAGS, "string", "Quality flag codes, comma-separated; empty when none."
    ),
    Column(contract.SEQUENCE_NUMBER, "string", "Kinesis sequence number the reading arrived with."),
    Column("ingested_at", "timestamp", "When the stream processor stored the reading, UTC."),
    Column(
        "written_at",
        "timestamp",
        "When this version was written to the table, UTC (taken from a full export: the "
        "export's time); the latest write of a key wins.",
    ),
    Column("dt", "date", "UTC date of the reading: the lake partition.", nullable=False),
)
"""Fixed columns of `raw.sensor_readings`. Extra payload fields (such as
`pressure`) follow as further columns, added as they first appear."""

QUARANTINE_COLUMNS: tuple[Column, ...] = (
    Column(
        contract.SEQUENCE_NUMBER,
        "string",
        "Kinesis sequence number, the natural key.",
        nullable=False,
    ),
    Column("reason", "string", "Quarantine reason code.", nullable=False),
    Column("detail", "string", "Human-readable explanation of the reason."),
    Column(
        contract.DEVICE_ID,
        "string",
        "Device id, when it could be read from the payload; else null.",
    ),
    Column("payload_base64", "string", "The raw payload bytes, base64, exactly as they arrived."),
    Column(
        "partition_key", "string", "Kinesis partition key (the device id for topic-rule traffic)."
    ),
    Column("arrived_at", "timestamp", "Approximate arrival time in the stream, UTC."),
    Column("quarantined_at", "timestamp", "When the stream processor quarantined it, UTC."),
    Column("event_source_arn", "string", "ARN of the stream the record came from."),
    Column("dt", "date", "UTC date of arrival: the lake partition.", nullable=False),
)
"""Columns of `raw.quarantined_records`."""

RULE_ERRORS_COLUMNS: tuple[Column, ...] = (
    Column(
        "error_id",
        "string",
        "Key of the error action's S3 object, the natural key.",
        nullable=False,
    ),
    Column(
        "reason",
        "string",
        f"`{contract.TOPIC_RULE_ERROR}`: the topic rule could not route the message.",
        nullable=False,
    ),
    Column("rule_name", "string", "Topic rule whose action failed."),
    Column("topic", "string", "MQTT topic the message was published to."),
    Column("client_id", "string", "MQTT client id of the publisher (`n/a` outside MQTT)."),
    Column("payload_base64", "string", "The raw payload bytes, base64, exactly as published."),
    Column("failed_action", "string", "The rule action that failed (e.g. `KinesisAction`)."),
    Column("failed_resource", "string", "What the failed action wrote to (e.g. the stream)."),
    Column("error_message", "string", "Why the action failed, as the rules engine reported it."),
    Column("errored_at", "timestamp", "When the error action wrote the record, UTC."),
    Column("dt", "date", "UTC date of the error: the lake partition.", nullable=False),
)
"""Columns of `raw.rule_errors`."""

#: Natural key of a reading: the DynamoDB primary key.
READINGS_KEY = (contract.DEVICE_ID, "reading_epoch")
#: Natural key of a quarantined record.
QUARANTINE_KEY = (contract.SEQUENCE_NUMBER,)
#: Natural key of a rule error.
RULE_ERRORS_KEY = ("error_id",)


@dataclass(frozen=True)
class Table:
    """A lake table and its `raw.*` twin: columns, natural key, versions and reading day.

    `version` is the column that orders a key's versions: the lake keeps the
    newest, and a load tells changed rows by it. `dt` is the SQL (the same on
    DuckDB and Redshift) that gives a row's lake partition from its columns, so
    a load derives `dt` rather than reading it from the folder.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    version: str
    dt: str
    #: The hour a reading belongs to, for tables whose marts are hourly; else None.
    hour: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        """The fixed columns' names, `dt` included."""
        return tuple(c.name for c in self.columns)

    @property
    def file_columns(self) -> tuple[str, ...]:
        """The fixed columns a lake file holds: all but `dt`, which is its folder."""
        return tuple(c.name for c in self.columns if c.name != "dt")


READINGS = Table(
    READINGS_TABLE,
    READINGS_COLUMNS,
    READINGS_KEY,
    version="written_at",
    dt="cast(reading_at as date)",
    hour="date_trunc('hour', reading_at)",
)
# The stream processor files a record under its arrival day, or the day it quarantined it
# when the record has no arrival time.
QUARANTINE = Table(
    QUARANTINE_TABLE,
    QUARANTINE_COLUMNS,
    QUARANTINE_KEY,
    version="quarantined_at",
    dt="cast(coalesce(arrived_at, quarantined_at) as date)",
)
RULE_ERRORS = Table(
    RULE_ERRORS_TABLE,
    RULE_ERRORS_COLUMNS,
    RULE_ERRORS_KEY,
    version="errored_at",
    dt="cast(errored_at as date)",
)
TABLES = (READINGS, QUARANTINE, RULE_ERRORS)


def create_table_sql(table: str, columns: tuple[Column, ...], dialect: str) -> str:
    """`create table if not exists raw.<table> (...)` for `dialect`."""
    body = ",\n    ".join(
        f"{c.name} {c.sql_type(dialect)}{'' if c.nullable else ' not null'}" for c in columns
    )
    return f"create table if not exists {RAW_SCHEMA}.{table} (\n    {body}\n)"


#: What an extra payload column holds (`pressure`, say): the lake and the warehouse add one
#: for each field the readings carry beyond the contract's, when it first appears.
EXTRA_COLUMN_DESCRIPTION = (
    "Extra payload field, kept as the device sent it; a column since it first appeared."
)
