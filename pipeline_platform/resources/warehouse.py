"""The warehouse resources: DuckDB locally, Redshift on AWS, with one loading contract.

Both load a set of lake partitions (Parquet under `.../dt=YYYY-MM-DD/`) into
`raw.<table>` the same way: stage the partitions' rows, add columns the lake
has gained, then in one transaction delete the staged natural keys from the
table and insert the staged rows. Loading a partition again yields the same
rows, and late readings for a day replace nothing but themselves.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_aws.secretsmanager import SecretsManagerResource
from pydantic import PrivateAttr

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.environment import (
    ANALYTICS_STACK,
    ENV_WAREHOUSE_PATH,
    RedshiftSettings,
    SettingMissing,
    load_settings,
)
from pipeline_platform.resources import redshift_sql
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.warehouse_load import LoadResult, LoadSpec


class Warehouse(dg.ConfigurableResource):
    """What every warehouse offers the assets: a merge of lake partitions, and dbt's profile
    environment."""

    def merge_partitions(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """Stage the spec's partitions and merge them into `raw.<table>` by natural key."""
        raise NotImplementedError

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's target for this warehouse reads from the environment."""
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    """The local warehouse: a DuckDB file that reads the lake's Parquet files."""

    path: str

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's `local` target reads from the environment."""
        return {ENV_WAREHOUSE_PATH: self.path}

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the warehouse file (creating its folder on first use)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(self.path, read_only=read_only)

    def merge_partitions(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """Stage the spec's partitions from S3 and merge them into `raw.<table>`."""
        keys = [
            k
            for k in cloud.partition_keys(spec.bucket, spec.lake_prefix, spec.days)
            if k.endswith(".parquet")
        ]
        with tempfile.TemporaryDirectory(prefix="warehouse-load-") as tmp:
            files = cloud.download(spec.bucket, keys, Path(tmp), strip=spec.lake_prefix)
            with self.connect() as con:
                return _merge_into_duckdb(con, spec, [str(f) for f in files])

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        """Run a read-only query and return its rows."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, parameters or []).fetchall()

    def day_counts(self, table: str, days: tuple[date, ...]) -> dict[str, int]:
        """Rows of `raw.<table>` per day in `days` (0 for a day without rows)."""
        with self.connect() as con:
            return _day_counts(con, table, days)


def _day_counts(
    con: duckdb.DuckDBPyConnection, table: str, days: tuple[date, ...]
) -> dict[str, int]:
    found = dict(
        con.execute(
            f"select cast(dt as varchar), count(*) from {ws.RAW_SCHEMA}.{table} "
            "where dt between ? and ? group by dt",
            [min(days), max(days)],
        ).fetchall()
    )
    return {d.isoformat(): int(found.get(d.isoformat(), 0)) for d in days}


def _merge_into_duckdb(
    con: duckdb.DuckDBPyConnection, spec: LoadSpec, files: list[str]
) -> LoadResult:
    qualified = f"{ws.RAW_SCHEMA}.{spec.table}"
    con.execute(f"create schema if not exists {ws.RAW_SCHEMA}")
    con.execute(ws.create_table_sql(spec.table, spec.columns, "duckdb"))
    existing = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [ws.RAW_SCHEMA, spec.table],
        ).fetchall()
    }
    added = []
    for name, logical in spec.extra_columns.items():
        if name not in existing:
            sql_type = ws.Column(name, logical, "").sql_type("duckdb")
            con.execute(f'alter table {qualified} add column "{name}" {sql_type}')
            added.append(name)
    staged = 0
    con.execute("begin transaction")
    try:
        if files:
            con.execute(
                "create or replace temp table stage as select * from read_parquet(?, "
                "hive_partitioning = true, hive_types = {'dt': 'date'}, union_by_name = true)",
                [files],
            )
            staged = con.execute("select count(*) from stage").fetchone()[0]
            match = " and ".join(f"t.{k} = s.{k}" for k in spec.key)
            con.execute(f"delete from {qualified} t using stage s where {match}")
            con.execute(f"insert into {qualified} by name select * from stage")
            con.execute("drop table stage")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    columns = tuple(
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [ws.RAW_SCHEMA, spec.table],
        ).fetchall()
    )
    return LoadResult(_day_counts(con, spec.table, spec.days), staged, tuple(added), columns)


class RedshiftWarehouse(Warehouse):
    """The AWS warehouse: Redshift COPYs the lake's Parquet with the stack's IAM role.

    Where the cluster is comes from the analytics stack's outputs, resolved when a
    run starts; its admin credentials from Secrets Manager through dagster-aws.
    """

    secrets: SecretsManagerResource
    _redshift: RedshiftSettings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Find the cluster once per run: a stack without one fails the run here, clearly."""
        self._redshift = self.cluster()

    def cluster(self) -> RedshiftSettings:
        """The cluster's endpoint, database, COPY role and secret, from the stack's outputs."""
        if self._redshift is None:
            found = load_settings().redshift
            if found is None:
                raise SettingMissing(
                    f"the {ANALYTICS_STACK} stack was deployed with DeployWarehouse=false, so "
                    "there is no Redshift warehouse to load; redeploy it with DeployWarehouse=true"
                )
            self._redshift = found
        return self._redshift

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's `redshift` target reads from the environment."""
        rs = self.cluster()
        return {
            "REDSHIFT_HOST": rs.host,
            "REDSHIFT_PORT": str(rs.port),
            "REDSHIFT_DATABASE": rs.database,
            "AWS_REGION": self.secrets.region_name or "",
        }

    def _engine(self) -> Any:
        import sqlalchemy as sa

        rs = self.cluster()
        secret = self.secrets.get_client().get_secret_value(SecretId=rs.secret_arn)
        creds = json.loads(secret["SecretString"])
        url = sa.engine.URL.create(
            "redshift+redshift_connector",
            username=creds["username"],
            password=creds["password"],
            host=rs.host,
            port=rs.port,
            database=rs.database,
        )
        return sa.create_engine(url)

    def merge_partitions(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """COPY the spec's partitions into a staging table and merge by natural key."""
        import sqlalchemy as sa

        engine = self._engine()
        with engine.connect() as conn:
            existing = {
                row[0]
                for row in conn.execute(
                    sa.text(
                        "select column_name from information_schema.columns "
                        "where table_schema = :s and table_name = :t"
                    ),
                    {"s": ws.RAW_SCHEMA, "t": spec.table},
                )
            }
            plan = redshift_sql.merge_statements(spec, self.cluster().copy_role_arn, existing)
            conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in plan.setup:
                conn.exec_driver_sql(statement)
            with conn.begin():
                for statement in plan.merge:
                    conn.exec_driver_sql(statement)
            staged = conn.exec_driver_sql(f"select count(*) from {plan.stage_table}").scalar()
            rows = dict(
                conn.execute(
                    sa.text(
                        f"select cast(dt as varchar), count(*) from {ws.RAW_SCHEMA}.{spec.table} "
                        "where dt between :a and :b group by dt"
                    ),
                    {"a": min(spec.days), "b": max(spec.days)},
                ).all()
            )
        return LoadResult(
            {d.isoformat(): int(rows.get(d.isoformat(), 0)) for d in spec.days},
            int(staged or 0),
            plan.added_columns,
            (),
        )
