"""Run the dbt project in-process against a throwaway warehouse, for tests.

Each invocation writes its target and logs under a directory the caller owns,
so tests never touch `dbt_redshift/target` (which others use) and never reuse
a partial parse from another target.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
from dbt.cli.main import dbtRunner, dbtRunnerResult

from pipeline_platform import warehouse_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO_ROOT / "dbt_redshift"


class DbtFailed(AssertionError):
    """A dbt command did not succeed; the message lists what failed."""


def run_dbt(args: Sequence[str], work_dir: Path) -> dbtRunnerResult:
    """Run `dbt <args>` on the project with target and logs under `work_dir`.

    Raises DbtFailed, naming every failed node and its message, unless dbt succeeded.
    """
    full_args = [
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--no-partial-parse",
        "--quiet",
    ]
    result = dbtRunner().invoke(full_args)
    if not result.success:
        raise DbtFailed(_describe_failure(args, result))
    return result


def _describe_failure(args: Sequence[str], result: dbtRunnerResult) -> str:
    if result.exception is not None:
        return f"dbt {' '.join(args)} raised: {result.exception!r}"
    failures = [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in getattr(result.result, "results", [])
        if str(r.status) not in {"success", "pass"}
    ]
    return f"dbt {' '.join(args)} failed:\n" + "\n".join(failures)


def create_raw_tables(connection: duckdb.DuckDBPyConnection, extra_columns: Sequence[str]) -> None:
    """Create the `raw.*` tables (readings, quarantined records, rule errors) as the loader does.

    `extra_columns` are payload fields (doubles) added after the fixed columns.
    """
    connection.execute(f"create schema if not exists {warehouse_schema.RAW_SCHEMA}")
    for table in warehouse_schema.TABLES:
        connection.execute(warehouse_schema.create_table_sql(table.name, table.columns, "duckdb"))
    for column in extra_columns:
        connection.execute(
            f"alter table {warehouse_schema.RAW_SCHEMA}.{warehouse_schema.READINGS_TABLE} "
            f"add column {column} double"
        )


def replace_rows(
    connection: duckdb.DuckDBPyConnection,
    table: warehouse_schema.Table,
    rows: Sequence[dict[str, object]],
) -> None:
    """Write `rows` into `raw.<table>` as a load does: a key already there is replaced."""
    target = f"{warehouse_schema.RAW_SCHEMA}.{table.name}"
    for row in rows:
        match = " and ".join(f"{k} = ?" for k in table.key)
        connection.execute(f"delete from {target} where {match}", [row[k] for k in table.key])
    insert_rows(connection, table.name, rows)


def insert_rows(
    connection: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, object]]
) -> None:
    """Insert `rows` (column name -> value; absent columns stay null) into `raw.<table>`."""
    for row in rows:
        columns = ", ".join(row)
        placeholders = ", ".join("?" for _ in row)
        target = f"{warehouse_schema.RAW_SCHEMA}.{table}"
        connection.execute(
            f"insert into {target} ({columns}) values ({placeholders})",
            list(row.values()),
        )
