"""The Redshift statements of a load: one COPY from a manifest of its files, then the merge.

The lake writes every file of a table with its fixed columns and then the extra
columns it has had so far, in the order they appeared (`lake.merge`); an older
file's columns are the first columns of a newer one. So one COPY, with
`FILLRECORD` for the older files' missing trailing columns, loads every file of
the load into a stage table holding all the columns. The COPY is built with
sqlalchemy-redshift's `CopyCommand` compiled for the Redshift dialect; the tests
run every statement on PostgreSQL (the COPY through a shim that reads the
manifest's files from S3) and, given a cluster, on Redshift. `dt` is derived in
the merge (`load_sql`), not set after the COPY.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy_redshift.commands import CopyCommand, Format
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.resources import load_sql
from pipeline_platform.resources.warehouse_load import LoadSpec

_DIALECT = RedshiftDialect_redshift_connector()


@dataclass(frozen=True)
class LoadPlan:
    """Statements run outside a transaction (DDL, the COPY) and the merge run in one."""

    stage_table: str
    setup: tuple[str, ...]
    merge: tuple[str, ...]
    added_columns: tuple[str, ...]


def _compile(statement: sa.sql.ClauseElement) -> str:
    return str(statement.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


def manifest(spec: LoadSpec) -> dict[str, Any]:
    """A COPY manifest of the load's files; Parquet needs each file's `content_length`."""
    return {
        "entries": [
            {
                "url": f"s3://{spec.bucket}/{f.key}",
                "mandatory": True,
                "meta": {"content_length": f.size},
            }
            for f in spec.files
        ]
    }


def table_setup(spec: LoadSpec, existing: set[str]) -> tuple[list[str], tuple[str, ...]]:
    """DDL that makes `raw.<table>` (with the lake's columns) and the bookkeeping exist.

    `existing` holds the table's current columns; the lake's extra columns it
    lacks are added. Returns the statements and the columns they add.
    """
    setup = [
        f"create schema if not exists {ws.RAW_SCHEMA}",
        ws.create_table_sql(spec.table.name, spec.table.columns, "redshift"),
        *load_sql.state_tables("redshift"),
    ]
    added = []
    for name, logical in spec.extra_columns.items():
        if name not in existing:
            sql_type = ws.Column(name, logical, "").sql_type("redshift")
            setup.append(f'alter table {spec.qualified} add column "{name}" {sql_type}')
            added.append(name)
    return setup, tuple(added)


def load_plan(
    spec: LoadSpec, copy_role_arn: str, existing: set[str], manifest: str, loaded_at: datetime
) -> LoadPlan:
    """Statements that load `spec`'s files into `raw.<table>` on Redshift.

    `existing` holds the table's current columns; lake columns it lacks are
    added. `manifest` is the key of the load's manifest in the lake bucket.
    """
    table = spec.table
    stage = f"stage_{table.name}"
    setup, added = table_setup(spec, existing)
    types = {c.name: c.sql_type("redshift") for c in table.columns} | {
        name: ws.Column(name, logical, "").sql_type("redshift")
        for name, logical in spec.extra_columns.items()
    }
    columns = load_sql.table_columns(spec)
    # Every staging column nullable, in the files' column order.
    body = ", ".join(f'"{name}" {types[name]}' for name in columns)
    setup += [f"drop table if exists {stage}", f"create temp table {stage} ({body})"]
    stage_table = sa.Table(stage, sa.MetaData(), *(sa.Column(n) for n in columns))
    copy = CopyCommand(
        stage_table,
        data_location=f"s3://{spec.bucket}/{manifest}",
        format=Format.parquet,
        iam_role_arns=copy_role_arn,
        manifest=True,
        fill_record=True,
    )
    setup += [
        *(f"drop table if exists {temp}" for temp in (load_sql.CHANGED, load_sql.LATEST)),
        _compile(copy),
    ]
    merge = load_sql.merge_statements(spec, stage, loaded_at)
    return LoadPlan(stage, tuple(setup), tuple(merge), added)
