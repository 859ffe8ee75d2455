"""The silence check: a scheduled function that announces devices gone quiet.

Run every minute by a schedule (so silence is noticed within a minute or two of the
window ending, whether or not any other device is sending), it reads the alert state
table and, for each device last seen more than the silence window ago and not yet
silent:

1. asks the readings table when the device's newest reading was stored (its shard's
   `seen` items are written at most once per half window, so they may lag behind);
2. if that too is older than the window, marks the device silent, with the
   DEVICE_SILENT event in the same write's outbox (a write conditional on the state it
   read: a device the stream processor wrote meanwhile is left alone). The alert
   notifier puts the event on the bus, from the table's stream.

The stream processor announces DEVICE_BACK with the device's next reading. A device
last seen longer ago than the state's retention is forgotten, as its items are.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from stream_processor.alert_events import outbox
from stream_processor.alert_rules import silenced
from stream_processor.alert_state import AlertStateTable, DeviceRecord
from stream_processor.aws_clients import make_client
from stream_processor.config import Config, ConfigError, load_config
from stream_processor.retry import Deadline
from stream_processor.telemetry import emit

_SECONDS_PER_DAY = 86400
#: Devices checked against the readings table at once.
CHECK_CONCURRENCY = 4
#: A scan page (up to 1 MB) may take longer to answer than the stream processor's requests.
SCAN_READ_TIMEOUT_S = 30.0


class SilenceCheck:
    """Finds and announces silent devices; one per execution environment."""

    def __init__(self, config: Config, dynamodb: Any = None) -> None:
        if config.alert_state_table is None:
            raise ConfigError("the silence check needs ALERT_STATE_TABLE")
        self.config = config
        pool = CHECK_CONCURRENCY + 1
        self._state = AlertStateTable(
            dynamodb or make_client("dynamodb", pool, read_timeout=SCAN_READ_TIMEOUT_S),
            config.alert_state_table,
            config.table_name,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=CHECK_CONCURRENCY, thread_name_prefix="silence-check"
        )

    def close(self) -> None:
        """Stop the threads (tools and tests)."""
        self._executor.shutdown(wait=True)

    def run(self, now: float, deadline: Deadline) -> dict[str, int]:
        """Check every device at `now`; return how many were known, silent and newly silent."""
        window = self.config.silence_window_s
        forgotten = now - self.config.alert_state_ttl_days * _SECONDS_PER_DAY
        known = silent = 0
        candidates: list[DeviceRecord] = []
        for record in self._state.devices(deadline):
            if record.status.version == 0 and (record.seen_at or 0.0) < forgotten:
                continue  # left in a `seen` item that has not expired yet
            known += 1
            if record.status.silent_since is not None:
                silent += 1
            elif record.seen_at is not None and record.seen_at < now - window:
                candidates.append(record)
        outcomes = list(
            self._executor.map(lambda record: self._check(record, now, deadline), candidates)
        )
        newly = sum(1 for outcome in outcomes if outcome)
        return {
            "devices": known,
            "candidates": len(candidates),
            "newly_silent": newly,
            "silent": silent + newly,
        }

    def _check(self, record: DeviceRecord, now: float, deadline: Deadline) -> bool:
        """Announce one candidate if it really is silent; True when announced."""
        assert record.seen_at is not None
        window = self.config.silence_window_s
        stored = self._state.last_stored(record.device_id, deadline)
        last_seen = max(record.seen_at, stored or 0.0)
        if last_seen >= now - window:
            return False  # it sent within the window; its `seen` item had not caught up
        expires_at = now + self.config.alert_state_ttl_days * _SECONDS_PER_DAY
        marked = replace(record.status, silent_since=last_seen)
        event = outbox([silenced(marked, last_seen, window)])
        # False: the stream processor wrote it meanwhile, so the device is talking.
        return self._state.save(marked, expires_at, deadline, event)


_check: SilenceCheck | None = None
_check_lock = threading.Lock()


def _cold_start() -> SilenceCheck:
    """Build the check on first use (the settings are read once per execution environment)."""
    global _check
    if _check is None:
        with _check_lock:
            if _check is None:
                _check = SilenceCheck(load_config(os.environ))
    return _check


def handler(event: Mapping[str, Any], context: object) -> dict[str, int]:
    """Lambda entry point for the schedule: one check of every device."""
    started = time.perf_counter()
    check = _cold_start()
    counts = check.run(time.time(), Deadline(context))
    emit(
        json.dumps(
            {
                "level": "INFO",
                "message": "silence check",
                **counts,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
        )
    )
    return counts
