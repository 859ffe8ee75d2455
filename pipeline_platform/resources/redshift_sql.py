"""The Redshift statements that load lake partitions: COPY into staging, merge by natural key.

Built as text with sqlalchemy-redshift's `CopyCommand` compiled for the
Redshift dialect, so they can be checked without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy_redshift.commands import CopyCommand, Format
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.resources.warehouse_load import LoadSpec

_DIALECT = RedshiftDialect_redshift_connector()


@dataclass(frozen=True)
class MergePlan:
    """Statements run outside a transaction (DDL, COPY) and the merge run in one."""

    stage_table: str
    setup: tuple[str, ...]
    merge: tuple[str, ...]
    added_columns: tuple[str, ...]


def _compile(statement: sa.sql.ClauseElement) -> str:
    return str(statement.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


def merge_statements(spec: LoadSpec, copy_role_arn: str, existing: set[str]) -> MergePlan:
    """Statements that load `spec`'s partitions into `raw.<table>` on Redshift.

    `existing` holds the table's current columns; lake columns it lacks are added.
    The Parquet files carry every column but `dt` (it is the Hive folder), so
    each partition is copied with an explicit column list and its `dt` set after.
    """
    qualified = f"{ws.RAW_SCHEMA}.{spec.table}"
    stage = f"stage_{spec.table}"
    setup = [
        f"create schema if not exists {ws.RAW_SCHEMA}",
        ws.create_table_sql(spec.table, spec.columns, "redshift"),
    ]
    added = []
    for name, logical in spec.extra_columns.items():
        if name not in existing:
            sql_type = ws.Column(name, logical, "").sql_type("redshift")
            setup.append(f'alter table {qualified} add column "{name}" {sql_type}')
            added.append(name)
    # Every staging column nullable: the files lack `dt`, which is set per partition after COPY.
    stage_columns = [(c.name, c.sql_type("redshift")) for c in spec.columns] + [
        (name, ws.Column(name, logical, "").sql_type("redshift"))
        for name, logical in spec.extra_columns.items()
    ]
    body = ", ".join(f'"{name}" {sql_type}' for name, sql_type in stage_columns)
    setup.append(f"create temp table {stage} ({body})")
    file_columns = [c.name for c in spec.columns if c.name != "dt"] + list(spec.extra_columns)
    stage_table = sa.Table(stage, sa.MetaData(), *(sa.Column(n) for n in [*file_columns, "dt"]))
    for day in spec.days:
        copy = CopyCommand(
            [stage_table.c[n] for n in file_columns],
            data_location=f"s3://{spec.bucket}/{spec.partition_prefix(day)}",
            format=Format.parquet,
            iam_role_arns=copy_role_arn,
        )
        setup.append(_compile(copy))
        setup.append(f"update {stage} set dt = '{day.isoformat()}' where dt is null")
    match = " and ".join(f"{qualified}.{k} = {stage}.{k}" for k in spec.key)
    columns = ", ".join(f'"{n}"' for n in [*file_columns, "dt"])
    merge = (
        f"delete from {qualified} using {stage} where {match}",
        f"insert into {qualified} ({columns}) select {columns} from {stage}",
    )
    return MergePlan(stage, tuple(setup), merge, tuple(added))
