"""The alert notifier: puts the alert state's outbox on the event bus.

The stream processor and the silence check store each alert state change together
with its events (the `alerts` item's `outbox`, `contract.ALERT_OUTBOX`). The state
table's stream delivers those writes here, filtered to the ones carrying an outbox
(`contract.ALERT_OUTBOX_FILTER`), in the order they were made per device; this
function puts their events on the bus (`alert_events.entry`), in order, ten per PutEvents
request.

A write whose events could not all be put is reported in `batchItemFailures` (its
stream sequence number): Lambda delivers the stream again from that write on, so no
announced change is lost. Events of that request that did get through are then sent
again; they carry the same `id` (see `alert_events.change_id`), which is how a consumer
recognises them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stream_processor import contract
from stream_processor.alert_events import EventPublisher, entry, outbox_changes
from stream_processor.aws_clients import make_client
from stream_processor.config import ConfigError, load_config
from stream_processor.retry import Deadline
from stream_processor.telemetry import emit

log = logging.getLogger(__name__)


class AlertNotifier:
    """Sends the events of state-table stream records; one per execution environment."""

    def __init__(self, bus_name: str, events: Any = None) -> None:
        self._publisher = EventPublisher(events or make_client("events", 1), bus_name)

    def notify(self, records: Sequence[Mapping[str, Any]], deadline: Deadline) -> dict[str, Any]:
        """Put the events of `records` (a DynamoDB stream batch) on the bus, in order.

        Returns the partial batch response and what was done: `events` sent, the first
        record `failed` (None when all were sent), and a sample `error`.
        """
        entries: list[dict[str, str]] = []
        owners: list[str] = []  # each entry's record, by sequence number
        for record in records:
            sequence = record["dynamodb"]["SequenceNumber"]
            text = record["dynamodb"].get("NewImage", {}).get(contract.ALERT_OUTBOX, {}).get("S")
            if text is None:
                continue  # a write without events (the mapping's filter normally drops it)
            try:
                found = [entry(change) for change in outbox_changes(text)]
            except ValueError:
                # Not written by this platform's functions: nothing to announce, and a
                # retry would not make it readable. Logged with its sequence number for an operator.
                log.error("record %s has an unreadable outbox: %.200s", sequence, text)
                continue
            entries += found
            owners += [sequence] * len(found)
        sent, error = self._publisher.publish(entries, deadline)
        failed = owners[sent] if sent < len(entries) else None
        return {
            "batchItemFailures": [] if failed is None else [{"itemIdentifier": failed}],
            "events": sent,
            "failed": failed,
            "error": error or None,
        }


_notifier: AlertNotifier | None = None
_notifier_lock = threading.Lock()


def _cold_start() -> AlertNotifier:
    """Build the notifier on first use (the settings are read once per execution environment)."""
    global _notifier
    if _notifier is None:
        with _notifier_lock:
            if _notifier is None:
                config = load_config(os.environ)
                if config.alert_bus_name is None:
                    raise ConfigError(f"the alert notifier needs {contract.ENV_ALERT_BUS_NAME}")
                _notifier = AlertNotifier(config.alert_bus_name)
    return _notifier


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point for the state table's stream mapping (ReportBatchItemFailures)."""
    started = time.perf_counter()
    records = event.get("Records", [])
    outcome = _cold_start().notify(records, Deadline(context))
    line: dict[str, Any] = {
        "level": "ERROR" if outcome["failed"] else "INFO",
        "message": "alert notifier",
        "records": len(records),
        "events": outcome["events"],
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if outcome["failed"]:
        line["failed_from"] = outcome["failed"]
        line["error"] = outcome["error"]
    emit(json.dumps(line))
    return {"batchItemFailures": outcome["batchItemFailures"]}
