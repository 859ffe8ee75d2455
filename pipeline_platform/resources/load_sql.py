"""The SQL of a warehouse load, the same on DuckDB and Redshift (see `warehouse_load`).

A load stages the lake files to load (change sets, or whole days) in a table of
its own (DuckDB reads them; Redshift COPYs them), then runs `merge_statements`
in one transaction. `dt` and the reading hour come from each row's columns
(`Table.dt`, `Table.hour`), never from the files' folders.
"""

from __future__ import annotations

from datetime import datetime

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.resources.warehouse_load import LoadSpec

LOADS = f"{ws.STATE_SCHEMA}.lake_loads"
PENDING = f"{ws.STATE_SCHEMA}.dbt_pending"
CHANGED = "load_changed"
LATEST = "load_latest"
# Names and tables' identifiers are short, and the same type on both warehouses.
_NAME = "varchar(128)"


def state_tables(dialect: str) -> list[str]:
    """DDL of the pipeline's bookkeeping: lake versions loaded, and what dbt must rebuild."""
    timestamp = ws.Column("t", "timestamp", "").sql_type(dialect)
    return [
        f"create schema if not exists {ws.STATE_SCHEMA}",
        f"create table if not exists {LOADS} (lake_table {_NAME} not null, lake_id {_NAME} not "
        f"null, lake_version bigint not null, days bigint, changed_rows bigint, "
        f"loaded_at {timestamp})",
        f"create table if not exists {PENDING} (lake_table {_NAME} not null, "
        f"lake_version bigint not null, reading_date date, reading_hour {timestamp}, "
        "full_refresh boolean not null)",
    ]


def table_columns(spec: LoadSpec) -> list[str]:
    """The columns a lake file of `spec` may hold, in file order: fixed, then extras."""
    return [*spec.table.file_columns, *spec.extra_columns]


def merge_statements(spec: LoadSpec, stage: str, loaded_at: datetime) -> list[str]:
    """The load's transaction, once `stage` holds the files' rows (columns of `table_columns`).

    0. of change sets, each key's newest version (`load_latest`), the rows to load;
    1. `load_changed`: rows to load whose key and version `raw.<table>` does not hold;
    2. the keys (change sets) or days (whole days) replaced in `raw.<table>`, `dt`
       derived from each row;
    3. the changed rows' reading days and hours queued for dbt;
    4. the lake version recorded as loaded.
    """
    table = spec.table
    columns = table_columns(spec)
    quoted = ", ".join(f'"{c}"' for c in columns)
    version = table.version
    key_list = ", ".join(table.key)
    statements = []
    if spec.change_sets:
        # A key changed by two lake versions not loaded yet is in both change sets; the lake
        # only ever applies a newer version, so the newest is the lake's.
        statements.append(
            f"create temp table {LATEST} as select {quoted} from (select {quoted}, "
            f"row_number() over (partition by {key_list} order by {version} desc nulls last) "
            f"as version_rank from {stage}) ranked where version_rank = 1"
        )
        stage = LATEST
    if spec.replace_all:
        # A new lake (its state started again) replaces the whole table, and dbt's marts too.
        replaced = f"delete from {spec.qualified}"
    elif spec.change_sets:
        matches = " and ".join(f"{spec.qualified}.{k} = {stage}.{k}" for k in table.key)
        replaced = f"delete from {spec.qualified} using {stage} where {matches}"
    else:
        replaced = (
            f"delete from {spec.qualified} where dt in (select distinct {table.dt} from {stage})"
        )
    refresh = "true" if spec.replace_all else "false"
    same = " and ".join(f"t.{k} = s.{k}" for k in table.key)
    same_version = f"(t.{version} = s.{version} or (t.{version} is null and s.{version} is null))"
    hour = table.hour or "cast(null as timestamp)"
    keys = ", ".join(f"s.{k}" for k in table.key)
    stamp = loaded_at.strftime("%Y-%m-%d %H:%M:%S")
    return [
        *statements,
        f"create temp table {CHANGED} as select {keys}, {table.dt} as dt, {hour} as reading_hour "
        f"from {stage} s"
        + (
            ""
            if spec.replace_all
            else f" where not exists (select 1 from {spec.qualified} t where {same} and "
            f"{same_version})"
        ),
        replaced,
        f"insert into {spec.qualified} ({quoted}, dt) select {quoted}, {table.dt} from {stage}",
        f"insert into {PENDING} (lake_table, lake_version, reading_date, reading_hour, "
        f"full_refresh) select distinct '{table.name}', {spec.lake_version}, dt, reading_hour, "
        f"false from {CHANGED}",
        f"insert into {PENDING} (lake_table, lake_version, full_refresh) "
        f"select '{table.name}', {spec.lake_version}, true where {refresh}",
        f"insert into {LOADS} (lake_table, lake_id, lake_version, days, changed_rows, loaded_at) "
        f"select '{table.name}', '{spec.lake_id}', {spec.lake_version}, "
        f"(select count(distinct {table.dt}) from {stage}), (select count(*) from {CHANGED}), "
        f"cast('{stamp}' as timestamp)",
    ]


def loaded_version_sql(table: str, lake_id: str) -> str:
    """The latest version of lake `lake_id` of `table` loaded, and whether another lake's was.

    One row: (version or 0, loads of `table` from other lakes).
    """
    this = f"lake_id = '{lake_id}'"
    return (
        f"select coalesce(max(case when {this} then lake_version end), 0), "
        f"count(case when not {this} then 1 end) from {LOADS} where lake_table = '{table}'"
    )


def rows_by_day_sql(table: str) -> str:
    """Rows of `raw.<table>` per reading day."""
    return f"select cast(dt as varchar), count(*) from {ws.RAW_SCHEMA}.{table} group by dt"


def table_exists_sql(table: str) -> str:
    """One row, one count: 1 when `raw.<table>` exists, else 0."""
    return (
        "select count(*) from information_schema.tables "
        f"where table_schema = '{ws.RAW_SCHEMA}' and table_name = '{table}'"
    )


def table_columns_sql(table: str) -> str:
    """The columns `raw.<table>` has (none before it exists), one row each."""
    return (
        "select column_name from information_schema.columns "
        f"where table_schema = '{ws.RAW_SCHEMA}' and table_name = '{table}'"
    )


def load_counts_sql(stage: str) -> str:
    """One row after the merge: rows staged, rows changed, reading hours and days queued."""
    return (
        f"select (select count(*) from {stage}), count(*), count(distinct reading_hour), "
        f"count(distinct dt) from {CHANGED}"
    )


def pending_sql() -> str:
    """Every queued reading day and hour, with the load that queued it."""
    return (
        f"select lake_table, lake_version, cast(reading_date as varchar), "
        f"cast(reading_hour as varchar), full_refresh from {PENDING}"
    )


def clear_pending_sql(up_to: dict[str, int]) -> list[str]:
    """Remove what dbt has built: the queued rows up to each table's latest load included."""
    return [
        f"delete from {PENDING} where lake_table = '{table}' and lake_version <= {version}"
        for table, version in sorted(up_to.items())
    ]
