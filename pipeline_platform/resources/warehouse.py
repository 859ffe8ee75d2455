"""The warehouse resources: DuckDB locally, Redshift on AWS, with one loading contract.

Both load what the lake changed since their last load into `raw.<table>` the
same way (`warehouse_load`, `load_sql`): stage the changed rows, add columns the
lake has gained, and in one transaction replace those keys, queue the
changed rows' reading hours and days for dbt, and record the lake version
loaded. They also keep dbt's queue: what is still to rebuild, and clearing it
once dbt has built.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

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
from pipeline_platform.resources import load_sql, redshift_sql
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.warehouse_load import Loaded, LoadResult, LoadSpec, Pending


class Warehouse(dg.ConfigurableResource):
    """What every warehouse offers the assets: loads of lake changes, dbt's queue, dbt's
    profile environment."""

    #: The target of `dbt_redshift/profiles.yml` that builds the models in this warehouse.
    dbt_target: ClassVar[str]

    def loaded(self, table: str, lake_id: str) -> Loaded:
        """The latest version of lake `lake_id` of `table` loaded (0 before the first load)."""
        raise NotImplementedError

    def load(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """Load `spec`'s lake files into `raw.<table>` (see `warehouse_load`)."""
        raise NotImplementedError

    def rows_by_day(self, table: str) -> dict[str, int]:
        """Rows of `raw.<table>` per reading day (empty before the table exists)."""
        raise NotImplementedError

    def pending(self) -> Pending:
        """The reading hours and days loads have queued for dbt since it last built."""
        raise NotImplementedError

    def clear_pending(self, pending: Pending) -> None:
        """Forget what `pending` held: dbt has built it."""
        raise NotImplementedError

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's target for this warehouse reads from the environment."""
        raise NotImplementedError

    def query(self, sql: str) -> list[tuple]:
        """Run a read-only query and return its rows."""
        raise NotImplementedError


def _pending(rows: list[tuple[Any, ...]]) -> Pending:
    up_to: dict[str, int] = defaultdict(int)
    hours: set[str] = set()
    days: set[str] = set()
    full_refresh = False
    for table, version, day, hour, refresh in rows:
        up_to[table] = max(up_to[table], int(version))
        full_refresh = full_refresh or bool(refresh)
        if day is not None:
            days.add(str(day))
        if hour is not None:
            hours.add(str(hour)[:19])
    return Pending(tuple(sorted(hours)), tuple(sorted(days)), dict(up_to), full_refresh)


def _loaded(row: tuple[Any, ...] | None) -> Loaded:
    return Loaded(int(row[0]), bool(row[1])) if row else Loaded(0, False)


def _now() -> datetime:
    return datetime.now(UTC)


class DuckDBWarehouse(Warehouse):
    """The local warehouse: a DuckDB file that reads the lake's Parquet files."""

    dbt_target: ClassVar[str] = "local"
    path: str

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's `local` target reads from the environment."""
        return {ENV_WAREHOUSE_PATH: self.path}

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the warehouse file (creating its folder on first use)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path, read_only=read_only)
        con.execute("set enable_progress_bar = false")
        return con

    def _state(self, con: duckdb.DuckDBPyConnection) -> None:
        for statement in load_sql.state_tables("duckdb"):
            con.execute(statement)

    def loaded(self, table: str, lake_id: str) -> Loaded:
        """The latest version of lake `lake_id` of `table` loaded (0 before the first load)."""
        with self.connect() as con:
            self._state(con)
            return _loaded(con.execute(load_sql.loaded_version_sql(table, lake_id)).fetchone())

    def load(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """Download `spec`'s files and load them into `raw.<table>` in one transaction."""
        with tempfile.TemporaryDirectory(prefix="warehouse-load-") as tmp:
            files = cloud.download(
                spec.bucket, [f.key for f in spec.files], Path(tmp), strip=spec.lake_prefix
            )
            with self.connect() as con:
                return _load_duckdb(con, spec, [str(f) for f in files])

    def rows_by_day(self, table: str) -> dict[str, int]:
        """Rows of `raw.<table>` per reading day (empty before the table exists)."""
        with self.connect() as con:
            exists = con.execute(load_sql.table_exists_sql(table)).fetchone()
            if not exists or not exists[0]:
                return {}
            rows = con.execute(load_sql.rows_by_day_sql(table)).fetchall()
        return {day: int(n) for day, n in rows}

    def pending(self) -> Pending:
        """The reading hours and days loads have queued for dbt since it last built."""
        with self.connect() as con:
            self._state(con)
            return _pending(con.execute(load_sql.pending_sql()).fetchall())

    def clear_pending(self, pending: Pending) -> None:
        """Forget what `pending` held: dbt has built it."""
        with self.connect() as con:
            for statement in load_sql.clear_pending_sql(pending.up_to):
                con.execute(statement)

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        """Run a read-only query and return its rows."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, parameters or []).fetchall()


def _table_columns(con: duckdb.DuckDBPyConnection, spec: LoadSpec) -> set[str]:
    return {name for (name,) in con.execute(load_sql.table_columns_sql(spec.table.name)).fetchall()}


def _load_duckdb(con: duckdb.DuckDBPyConnection, spec: LoadSpec, files: list[str]) -> LoadResult:
    con.execute(f"create schema if not exists {ws.RAW_SCHEMA}")
    con.execute(ws.create_table_sql(spec.table.name, spec.table.columns, "duckdb"))
    for statement in load_sql.state_tables("duckdb"):
        con.execute(statement)
    existing = _table_columns(con, spec)
    added = []
    for name, logical in spec.extra_columns.items():
        if name not in existing:
            sql_type = ws.Column(name, logical, "").sql_type("duckdb")
            con.execute(f'alter table {spec.qualified} add column "{name}" {sql_type}')
            added.append(name)
    # The stage has every column the table's files may have; a column no file of these days
    # has yet is null.
    types = {c.name: c.sql_type("duckdb") for c in spec.table.columns} | {
        name: ws.Column(name, logical, "").sql_type("duckdb")
        for name, logical in spec.extra_columns.items()
    }
    stage = f"stage_{spec.table.name}"
    staged = changed = queued_hours = queued_days = 0
    con.execute("begin transaction")
    try:
        if files:
            read = "read_parquet(?, hive_partitioning = false, union_by_name = true)"
            present = {
                row[0] for row in con.execute(f"describe select * from {read}", [files]).fetchall()
            }
            select = ", ".join(
                f'"{c}"' if c in present else f'cast(null as {types[c]}) as "{c}"'
                for c in load_sql.table_columns(spec)
            )
            con.execute(
                f"create or replace temp table {stage} as select {select} from {read}", [files]
            )
            for statement in load_sql.merge_statements(spec, stage, _now()):
                con.execute(statement)
            counts = con.execute(load_sql.load_counts_sql(stage)).fetchone()
            assert counts is not None
            staged, changed, queued_hours, queued_days = (int(n) for n in counts)
            for temp in (load_sql.CHANGED, load_sql.LATEST, stage):
                con.execute(f"drop table if exists {temp}")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    rows = con.execute(load_sql.rows_by_day_sql(spec.table.name)).fetchall()
    return LoadResult(
        staged,
        changed,
        {day: int(n) for day, n in rows},
        tuple(added),
        queued_hours,
        queued_days,
    )


class RedshiftWarehouse(Warehouse):
    """The AWS warehouse: Redshift COPYs the lake's Parquet with the stack's IAM role.

    Where the cluster is comes from the analytics stack's outputs, resolved when a
    run starts, unless `host` names it (with its COPY role and secret); its admin
    credentials from Secrets Manager through dagster-aws. The run's statements share
    one connection pool, closed when the run ends.
    """

    dbt_target: ClassVar[str] = "redshift"
    secrets: SecretsManagerResource
    #: The cluster's endpoint; unset, the analytics stack's (when a run starts).
    host: str | None = None
    port: int = 5439
    database: str = "dev"
    #: The IAM role COPY reads the lake as (with `host`).
    copy_role_arn: str | None = None
    #: The Secrets Manager secret (`username`, `password`) loads connect with (with `host`).
    secret_arn: str | None = None
    _redshift: RedshiftSettings | None = PrivateAttr(default=None)
    _engine: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Find the cluster once per run: a stack without one fails the run here, clearly."""
        self._redshift = self.cluster()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the run's connections to the cluster."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def cluster(self) -> RedshiftSettings:
        """The cluster's endpoint, database, COPY role and secret: the resource's own, or
        from the stack's outputs."""
        if self._redshift is None:
            self._redshift = self._configured() or self._deployed()
        return self._redshift

    def _configured(self) -> RedshiftSettings | None:
        if self.host is None:
            return None
        if self.copy_role_arn is None or self.secret_arn is None:
            raise SettingMissing(
                "a Redshift warehouse given by its host needs copy_role_arn and secret_arn too"
            )
        return RedshiftSettings(
            self.host, self.port, self.database, self.copy_role_arn, self.secret_arn
        )

    def _deployed(self) -> RedshiftSettings:
        found = load_settings().redshift
        if found is None:
            raise SettingMissing(
                f"the {ANALYTICS_STACK} stack was deployed with DeployWarehouse=false, so "
                "there is no Redshift warehouse to load; redeploy it with DeployWarehouse=true"
            )
        return found

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile's `redshift` target reads from the environment."""
        rs = self.cluster()
        return {
            "REDSHIFT_HOST": rs.host,
            "REDSHIFT_PORT": str(rs.port),
            "REDSHIFT_DATABASE": rs.database,
            "AWS_REGION": self.secrets.region_name or "",
        }

    def _connect(self) -> Any:
        """A connection from the run's pool (made on first use)."""
        if self._engine is None:
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
            self._engine = sa.create_engine(url)
        return self._engine.connect()

    def _run(self, statements: list[str], query: str | None = None) -> list[tuple[Any, ...]]:
        """`statements` in one transaction, then `query`'s rows."""
        with self._connect() as conn:
            with conn.begin():
                for statement in statements:
                    conn.exec_driver_sql(statement)
                rows = conn.exec_driver_sql(query).all() if query else []
            return [tuple(r) for r in rows]

    def loaded(self, table: str, lake_id: str) -> Loaded:
        """The latest version of lake `lake_id` of `table` loaded (0 before the first load)."""
        rows = self._run(
            load_sql.state_tables("redshift"), load_sql.loaded_version_sql(table, lake_id)
        )
        return _loaded(rows[0] if rows else None)

    def load(self, spec: LoadSpec, cloud: CloudResource) -> LoadResult:
        """One COPY of the load's files (from a manifest) into a stage, then the merge in one
        transaction: a load that fails leaves `raw.<table>`'s rows and the bookkeeping as they
        were (a column the lake gained may stay added: it is null until loaded)."""
        existing = {row[0] for row in self._run([], load_sql.table_columns_sql(spec.table.name))}
        if not spec.files:
            # Nothing to load, but the table (and columns the lake has gained) exist for dbt.
            setup, added = redshift_sql.table_setup(spec, existing)
            self._run(setup)
            return LoadResult(0, 0, self.rows_by_day(spec.table.name), added, 0, 0)
        manifest_key = spec.manifest_key
        cloud.put_json(spec.bucket, manifest_key, redshift_sql.manifest(spec))
        with self._connect() as conn:
            plan = redshift_sql.load_plan(
                spec, self.cluster().copy_role_arn, existing, manifest_key, _now()
            )
            with conn.begin():
                for statement in plan.setup:
                    conn.exec_driver_sql(statement)
            with conn.begin():
                for statement in plan.merge:
                    conn.exec_driver_sql(statement)
                counts = conn.exec_driver_sql(load_sql.load_counts_sql(plan.stage_table)).one()
                rows = conn.exec_driver_sql(load_sql.rows_by_day_sql(spec.table.name)).all()
        staged, changed, hours, days = (int(n or 0) for n in counts)
        return LoadResult(
            staged, changed, {d: int(n) for d, n in rows}, plan.added_columns, hours, days
        )

    def rows_by_day(self, table: str) -> dict[str, int]:
        """Rows of `raw.<table>` per reading day (empty before the table exists)."""
        exists = self._run([], load_sql.table_exists_sql(table))
        if not exists or not exists[0][0]:
            return {}
        rows = self._run([], load_sql.rows_by_day_sql(table))
        return {str(day): int(n) for day, n in rows}

    def pending(self) -> Pending:
        """The reading hours and days loads have queued for dbt since it last built."""
        return _pending(self._run(load_sql.state_tables("redshift"), load_sql.pending_sql()))

    def clear_pending(self, pending: Pending) -> None:
        """Forget what `pending` held: dbt has built it."""
        self._run(load_sql.clear_pending_sql(pending.up_to))

    def query(self, sql: str) -> list[tuple]:
        """Run a read-only query and return its rows."""
        return self._run([], sql)
