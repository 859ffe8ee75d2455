"""The silence check: a scheduled function that announces devices gone quiet.

Run every minute by a schedule (so silence is noticed within a minute or two of the
window ending, whether or not any other device is sending), it reads the alert state
table and, for each device last seen more than the silence window ago and not yet
silent:

1. asks the readings table when the device's newest reading was stored (its `seen`
   item is written at most once per half window, so it may lag behind);
2. if that too is older than the window, marks the device silent (a write conditional
   on the state it read: a device the stream processor wrote meanwhile is left alone);
3. puts DEVICE_SILENT on the bus, or takes the mark back when it cannot, so the next
   run tries again.

The stream processor announces DEVICE_BACK with the device's next reading.
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

from stream_processor.alert_events import EventPublisher
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

    def __init__(self, config: Config, dynamodb: Any = None, events: Any = None) -> None:
        if config.alert_state_table is None or config.alert_bus_name is None:
            raise ConfigError("the silence check needs ALERT_STATE_TABLE and ALERT_BUS_NAME")
        self.config = config
        pool = CHECK_CONCURRENCY + 1
        self._state = AlertStateTable(
            dynamodb or make_client("dynamodb", pool, read_timeout=SCAN_READ_TIMEOUT_S),
            config.alert_state_table,
            config.table_name,
        )
        self._publisher = EventPublisher(
            events or make_client("events", pool), config.alert_bus_name
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
        known = silent = 0
        candidates: list[DeviceRecord] = []
        for record in self._state.devices(deadline):
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
        if not self._state.save(marked, expires_at, deadline):
            return False  # the stream processor wrote it meanwhile: the device is talking
        unsent, _ = self._publisher.publish([silenced(marked, last_seen, window)], deadline)
        if unsent:
            # Not announced: take the mark back, so the next run announces it.
            self._state.save(
                replace(marked, version=marked.version + 1, silent_since=None),
                expires_at,
                deadline,
            )
            return False
        return True


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
