"""The lake and warehouse layout of readings, derived from the reading contract.

The stream processor's contract names the attributes; this module says how
they land as columns in the Parquet lake, in `raw.sensor_readings` and in
`raw.quarantined_records` (Redshift and the local DuckDB alike). The dbt
sources describe these tables; the loaders create them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_processor import contract

RAW_SCHEMA = "raw"
READINGS_TABLE = "sensor_readings"
QUARANTINE_TABLE = "quarantined_records"

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

#: Natural key of a reading: the DynamoDB primary key.
READINGS_KEY = (contract.DEVICE_ID, "reading_epoch")
#: Natural key of a quarantined record.
QUARANTINE_KEY = (contract.SEQUENCE_NUMBER,)


def create_table_sql(table: str, columns: tuple[Column, ...], dialect: str) -> str:
    """`create table if not exists raw.<table> (...)` for `dialect`."""
    body = ",\n    ".join(
        f"{c.name} {c.sql_type(dialect)}{'' if c.nullable else ' not null'}" for c in columns
    )
    return f"create table if not exists {RAW_SCHEMA}.{table} (\n    {body}\n)"
