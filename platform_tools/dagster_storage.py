"""The local Dagster instance's storage: Dagster's SQLite storage, one database engine per file.

Dagster's SQLite event log builds a new SQLAlchemy engine for every event it stores
(two or three for an asset or check event: the run's file and the index), and one more
each time it asks whether a table exists, then disposes of it. A new engine initialises
its dialect on first connect: about 30 ms of CPU per event on 2 cores, and a run's dbt
step alone stores about a hundred events while the webserver reads them back. This
storage keeps one engine per database file for the life of the process. The engines
keep Dagster's `NullPool`: every use still opens and closes its own SQLite connection,
so threads and processes share no connection, only the engine's dialect.

Written against Dagster 1.13 (pinned in pyproject.toml): it overrides the event log's
`_connect` and `has_table`. Used by the instance `ui` and `materialize` share
(`dagster_home`); the layout on disk is Dagster's own, so an instance written before
reads the same.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

#: Engines kept per process (one per run's database touched, plus the index): the
#: webserver reads many runs over a day; an engine without connections costs only memory.
KEPT_ENGINES = 64


class EngineReusingSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log, reusing one engine per database file."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> EngineReusingSqliteEventLogStorage:
        """The storage for the `base_dir` an instance reference names."""
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                self._engines[shard] = engine
                while len(self._engines) > KEPT_ENGINES:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(shard)
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's, without building and disposing of an engine each time.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has `table_name` (asked on every asset check event)."""
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        """Stop watching for events and let go of the engines."""
        super().dispose()
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class LocalSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, event logs, schedules) with the engine-reusing event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        events_dir = _event_logs_directory(base_dir)
        self._event_log_storage = EngineReusingSqliteEventLogStorage(events_dir)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> LocalSqliteStorage:
        """The storage under `base_dir`, as the instance's `dagster.yaml` gives it."""
        return cls.from_local(inst_data=inst_data, **config_value)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        """How another process (a run's) builds the same event log."""
        return ConfigurableClassData(
            __name__,
            EngineReusingSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}, default_flow_style=False),
        )


def _event_logs_directory(base_dir: str) -> str:
    # Where Dagster's SQLite storage keeps the event logs under its base dir.
    return os.path.join(base_dir, "history", "runs", "")
