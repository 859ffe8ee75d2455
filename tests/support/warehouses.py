"""The warehouses the pipeline tests run on: the local DuckDB file, and Redshift's SQL on
PostgreSQL (the product's Redshift resource and dbt's Redshift target, through
`redshift_proxy`).

Each gives the pipeline its warehouse resource, the environment dbt's profile
reads, a way to read what the warehouse holds, and a way to make it unreachable
for a while (a failed load). Tests parametrised over `KINDS` make the same
assertions on both.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import duckdb
from dagster_aws.secretsmanager import SecretsManagerResource

from pipeline_platform.resources.warehouse import DuckDBWarehouse, RedshiftWarehouse, Warehouse
from tests.support import redshift_shim
from tests.support.postgres_server import PostgresServer, running_postgres
from tests.support.redshift_proxy import HOST, RedshiftProxy

DUCKDB = "duckdb"
POSTGRES_AS_REDSHIFT = "postgres-as-redshift"
#: The warehouses a parametrised test runs on.
KINDS = (DUCKDB, POSTGRES_AS_REDSHIFT)
#: The user in the warehouse's admin secret (the PostgreSQL cluster's superuser).
REDSHIFT_ADMIN = "warehouse_admin"


class WarehouseUnderTest:
    """A warehouse for one deployment: its resource, dbt's environment, reads, an outage."""

    kind: str
    resource: Warehouse

    def environment(self) -> dict[str, str]:
        """What the process environment must hold while the pipeline runs on it (dbt's
        profile reads its connection settings there)."""
        return {}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of `sql`, read as an analyst would."""
        raise NotImplementedError

    def unreachable(self) -> contextlib.AbstractContextManager[None]:
        """A block during which loads into this warehouse fail."""
        raise NotImplementedError


@dataclass
class DuckDBUnderTest(WarehouseUnderTest):
    """The local warehouse file."""

    path: Path
    kind: str = DUCKDB

    def __post_init__(self) -> None:
        self.resource = DuckDBWarehouse(path=str(self.path))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of `sql`, from the file opened read-only."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).fetchall()

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[None]:
        """Another process holds the file open for writing (a notebook left open)."""
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
                "sys.stdin.read()",
                str(self.path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
            yield
        finally:
            holder.kill()
            holder.wait()


@dataclass
class RedshiftOnPostgres:
    """A PostgreSQL server that answers as Redshift through a proxy, for a whole session."""

    server: PostgresServer
    proxy: RedshiftProxy
    _databases: int = field(default=0)

    def warehouse(self, copy_role_arn: str, region: str) -> PostgresUnderTest:
        """A new, empty database with Redshift's catalog stubs, the admin's secret in
        Secrets Manager (the local cloud's), and the Redshift resource that loads it."""
        self._databases += 1
        database = f"warehouse{self._databases}"
        self.server.create_database(database)
        con = self.server.connect(database)
        try:
            with con.cursor() as cur:
                for statement in redshift_shim.stub_statements():
                    cur.execute(statement)
        finally:
            con.close()
        password = secrets.token_urlsafe(12)
        secret_arn = boto3.client("secretsmanager", region_name=region).create_secret(
            Name=f"redshift-admin-{database}-{secrets.token_hex(3)}",
            SecretString=json.dumps({"username": REDSHIFT_ADMIN, "password": password}),
        )["ARN"]
        resource = RedshiftWarehouse(
            secrets=SecretsManagerResource(region_name=region),
            host=HOST,
            port=self.proxy.port,
            database=database,
            copy_role_arn=copy_role_arn,
            secret_arn=secret_arn,
        )
        return PostgresUnderTest(self, database, password, resource)


@dataclass
class PostgresUnderTest(WarehouseUnderTest):
    """One database of `RedshiftOnPostgres`, loaded by the product's Redshift resource."""

    on: RedshiftOnPostgres
    database: str
    password: str
    resource: Warehouse
    kind: str = POSTGRES_AS_REDSHIFT

    def environment(self) -> dict[str, str]:
        """dbt's `redshift` target on the proxy, with the admin's password, trusting the
        proxy's certificate."""
        return {
            "REDSHIFT_HOST": HOST,
            "REDSHIFT_PORT": str(self.on.proxy.port),
            "REDSHIFT_DATABASE": self.database,
            "REDSHIFT_USER": REDSHIFT_ADMIN,
            "REDSHIFT_PASSWORD": self.password,
            "REDSHIFT_AUTH_METHOD": "database",
            **self.on.proxy.trust_environment(),
        }

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of `sql`, read from PostgreSQL directly."""
        con = self.on.server.connect(self.database)
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            con.close()

    def unreachable(self) -> contextlib.AbstractContextManager[None]:
        """The proxy turns connections away: the cluster cannot be reached."""
        return self.on.proxy.refusing()


def s3_reader(endpoint_url: str, region: str) -> Callable[[str, str], bytes]:
    """`read_object(bucket, key)` on the local cloud's S3; KeyError for a missing object."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def read_object(bucket: str, key: str) -> bytes:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise KeyError(f"s3://{bucket}/{key}") from None

    return read_object


@contextlib.contextmanager
def redshift_on_postgres(endpoint_url: str, region: str) -> Iterator[RedshiftOnPostgres]:
    """PostgreSQL and the proxy in front of it, COPY reading the local cloud's S3."""
    with running_postgres(REDSHIFT_ADMIN) as server:
        proxy = RedshiftProxy(server.port, s3_reader(endpoint_url, region)).start()
        try:
            yield RedshiftOnPostgres(server, proxy)
        finally:
            proxy.stop()
