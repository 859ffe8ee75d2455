"""Alert events: their detail (the contract's schema), their sentence, the outbox they wait
in, and PutEvents with retries.

Each state change is one EventBridge event with the contract's source and the
detail-type of its state. Its `id` is derived from the change itself, so the same
change sent twice carries the same id. The functions that decide changes store them with the
state they describe (`outbox`); the alert notifier turns them into events on the bus.
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


def entry(change: Change) -> dict[str, str]:
    """The PutEvents entry of one change, without its bus (the notifier adds it)."""
    return {
        "Source": contract.ALERT_EVENT_SOURCE,
        "DetailType": contract.ALERT_DETAIL_TYPES[change.state],
        "Detail": json.dumps(detail(change), separators=(",", ":")),
    }


def outbox(changes: Sequence[Change]) -> str:
    """The outbox of a state write announcing `changes`: their facts, as compact JSON text
    (a few hundred bytes, so a state item with its outbox stays one write unit)."""
    return json.dumps([change._asdict() for change in changes], separators=(",", ":"))


def outbox_changes(text: str) -> list[Change]:
    """The changes of an outbox (`outbox`'s text); ValueError when it is not one."""
    try:
        found = json.loads(text)
        return [Change(**fields) for fields in found]
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"not an alert outbox: {text[:200]!r}") from exc


class EventPublisher:
    """Puts alert events on one bus, ten per request, retrying what failed until the deadline."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    def publish(self, entries: Sequence[dict[str, str]], deadline: Deadline) -> tuple[int, str]:
        """Send `entries` in order, ten at a time, until a request leaves some unsent.

        Returns the index of the first entry not known to be sent (`len(entries)` when
        all were) and a sample error, or "". Entries after it are not attempted: they are
        sent again anyway when their records come back.
        """
        for start in range(0, len(entries), PUT_EVENTS_LIMIT):
            chunk = [
                {**e, "EventBusName": self._bus_name}
                for e in entries[start : start + PUT_EVENTS_LIMIT]
            ]
            unsent, error = self._publish_chunk(chunk, deadline)
            if unsent:
                return start + min(unsent), error
        return len(entries), ""

    def _publish_chunk(
        self, chunk: list[dict[str, str]], deadline: Deadline
    ) -> tuple[list[int], str]:
        """Send one request's entries; the indexes of those not sent, and a sample error."""
        pending = list(range(len(chunk)))
        refused: list[int] = []  # entries EventBridge will not take, however often sent
        attempt = 0
        error = ""
        while True:
            retry: list[int] = []
            try:
                response = self._client.put_events(Entries=[chunk[i] for i in pending])
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if not is_transient(exc):
                    return refused + pending, error
                retry = pending
            else:
                results = response.get("Entries") or []
                for index, result in zip(pending, results, strict=False):
                    code = result.get("ErrorCode")
                    if code:
                        error = f"{code}: {result.get('ErrorMessage', '')}"
                        (retry if code in _TRANSIENT_ENTRY_ERRORS else refused).append(index)
                retry += pending[len(results) :]  # entries without an answer were not taken
            if not retry:
                return refused, error
            if not wait_for_retry(attempt, deadline):
                return refused + retry, error
            attempt += 1
            pending = retry
