"""Alert events on the event bus: their detail (the contract's schema), their sentence, and
PutEvents with retries.

Each state change is one EventBridge event with the contract's source and the
detail-type of its state. Its `id` is derived from the change itself, so the same
change sent twice carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from stream_processor import contract
from stream_processor.alert_rules import Change
from stream_processor.retry import Deadline, is_transient, wait_for_retry

#: PutEvents takes at most 10 entries.
PUT_EVENTS_LIMIT = 10
#: Entry error codes worth another attempt (the others mean the entry itself is wrong).
_TRANSIENT_ENTRY_ERRORS = frozenset({"ThrottlingException", "InternalFailure", "InternalException"})
_UNITS = {contract.TEMPERATURE: " C", contract.HUMIDITY: " %RH"}


def iso(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC, to the second when whole, else to the millisecond."""
    whole = float(seconds).is_integer()
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}Z" if whole else f"{text}.{round(seconds % 1 * 1000):03d}Z"


def _number(value: float | None) -> int | float | None:
    """A value as JSON shows it best: 50 rather than 50.0."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _readable(value: float | None, measurement: str | None) -> str:
    return f"{_number(value)}{_UNITS.get(measurement or '', '')}"


def change_id(change: Change) -> str:
    """The same id for the same change, however often it is sent."""
    moment = change.reading_seconds if change.state != contract.DEVICE_BACK else change.since
    key = f"{change.device_id}|{change.code}|{change.state}|{moment}|{change.since}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def message(change: Change) -> str:
    """One sentence a person reads in an e-mail."""
    device, code = change.device_id, change.code
    since = iso(change.since)
    if change.state == contract.DEVICE_SILENT:
        window = int(change.silence_window_s or 0)
        return f"{device} is silent: no reading since {since} (silence window {window} s)."
    assert change.reading_seconds is not None  # every other change comes from a reading
    reading = iso(change.reading_seconds)
    if change.state == contract.DEVICE_BACK:
        return f"{device} is back: a reading arrived (dated {reading}) after silence since {since}."
    value = _readable(change.value, change.measurement)
    what = f"{device}: {code}"
    if change.state == contract.RAISED:
        threshold = _readable(change.threshold, change.measurement)
        return (
            f"{what} raised: {change.measurement} {value} crossed the threshold of {threshold}"
            f" (reading of {reading})."
        )
    if change.state == contract.REMINDER:
        return (
            f"{what} still raised since {since}: {change.measurement} {value}"
            f" (reading of {reading})."
        )
    clear_level = _readable(change.clear_level, change.measurement)
    return (
        f"{what} cleared: {change.measurement} {value} is back past {clear_level}"
        f" (reading of {reading}); raised since {since}."
    )


def detail(change: Change) -> dict[str, Any]:
    """The event's detail: the contract's fields, in its order."""
    reading = change.reading_seconds
    values = (
        contract.ALERT_SCHEMA_VERSION,
        change_id(change),
        change.device_id,
        change.code,
        change.state,
        change.measurement,
        _number(change.value),
        _number(change.threshold),
        _number(change.clear_level),
        _number(reading),
        None if reading is None else iso(reading),
        iso(change.since),
        _number(change.since),
        _number(change.silence_window_s),
        message(change),
    )
    return dict(zip(contract.ALERT_DETAIL_FIELDS, values, strict=True))


def entry(change: Change, bus_name: str) -> dict[str, str]:
    """The PutEvents entry of one change."""
    return {
        "Source": contract.ALERT_EVENT_SOURCE,
        "DetailType": contract.ALERT_DETAIL_TYPES[change.state],
        "Detail": json.dumps(detail(change), separators=(",", ":")),
        "EventBusName": bus_name,
    }


class EventPublisher:
    """Puts alert events on one bus, ten per request, retrying what failed until the deadline."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    def publish(self, changes: Sequence[Change], deadline: Deadline) -> tuple[list[Change], str]:
        """Send `changes`; return those not sent (and a sample error, or "")."""
        failed: list[Change] = []
        error = ""
        for start in range(0, len(changes), PUT_EVENTS_LIMIT):
            chunk_failed, chunk_error = self._publish_chunk(
                list(changes[start : start + PUT_EVENTS_LIMIT]), deadline
            )
            failed += chunk_failed
            error = error or chunk_error
        return failed, error

    def _publish_chunk(self, pending: list[Change], deadline: Deadline) -> tuple[list[Change], str]:
        refused: list[Change] = []  # entries EventBridge will not take, however often sent
        attempt = 0
        error = ""
        while True:
            retry: list[Change] = []
            try:
                response = self._client.put_events(
                    Entries=[entry(change, self._bus_name) for change in pending]
                )
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if not is_transient(exc):
                    return refused + pending, error
                retry = pending
            else:
                results = response.get("Entries") or []
                for change, result in zip(pending, results, strict=False):
                    code = result.get("ErrorCode")
                    if code:
                        error = f"{code}: {result.get('ErrorMessage', '')}"
                        (retry if code in _TRANSIENT_ENTRY_ERRORS else refused).append(change)
                retry += pending[len(results) :]  # entries without an answer were not taken
            if not retry:
                return refused, error
            if not wait_for_retry(attempt, deadline):
                return refused + retry, error
            attempt += 1
            pending = retry
