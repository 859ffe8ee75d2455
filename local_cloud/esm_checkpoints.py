"""Where each event source mapping has got to in each shard, kept in SQLite under a state dir.

Keyed by the mapping's UUID, which the emulator mints afresh for every mapping,
so a restarted runner resumes where it stopped and never mistakes a new emulator's
mapping for an old one. The emulator's snapshots carry a copy taken with the state they
save (`persistence`); restoring one puts that copy back here.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class CheckpointStore:
    """Last fully processed sequence number per (mapping UUID, shard id)."""

    def __init__(self, state_dir: str | Path) -> None:
        path = Path(state_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / "esm_checkpoints.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a commit per batch stays cheap; a crash loses at most the
        # last checkpoints, which only means redelivery (writes are idempotent).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoint ("
            " mapping_uuid TEXT NOT NULL, shard_id TEXT NOT NULL, sequence TEXT NOT NULL,"
            " PRIMARY KEY (mapping_uuid, shard_id))"
        )

    def get(self, mapping_uuid: str, shard_id: str) -> int | None:
        """The stored checkpoint, or None when this mapping never finished a batch here."""
        with self._lock:
            row = self._db.execute(
                "SELECT sequence FROM checkpoint WHERE mapping_uuid = ? AND shard_id = ?",
                (mapping_uuid, shard_id),
            ).fetchone()
        return int(row[0]) if row else None

    def put(self, mapping_uuid: str, shard_id: str, sequence: int) -> None:
        """Record that every record up to `sequence` is done."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoint (mapping_uuid, shard_id, sequence) VALUES (?, ?, ?)"
                " ON CONFLICT (mapping_uuid, shard_id) DO UPDATE SET sequence = excluded.sequence",
                (mapping_uuid, shard_id, str(sequence)),
            )

    def all(self) -> list[tuple[str, str, int]]:
        """Every checkpoint, as (mapping UUID, shard id, sequence) (saved with a snapshot)."""
        with self._lock:
            rows = self._db.execute("SELECT mapping_uuid, shard_id, sequence FROM checkpoint")
            return [(uuid, shard, int(sequence)) for uuid, shard, sequence in rows.fetchall()]

    def replace_all(self, checkpoints: list[tuple[str, str, int]]) -> None:
        """Make these the only checkpoints (those of a restored snapshot)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM checkpoint")
            self._db.executemany(
                "INSERT INTO checkpoint (mapping_uuid, shard_id, sequence) VALUES (?, ?, ?)",
                [(uuid, shard, str(sequence)) for uuid, shard, sequence in checkpoints],
            )
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
