"""Alert state changes, decided from a device's readings: pure logic, no AWS.

A device's alerts are a small state machine per alert code. A reading whose value
crosses the threshold RAISES the alert; it stays raised until a reading is back past
the clear level (the threshold moved by the hysteresis margin), which CLEARS it. A
value hovering at the threshold therefore raises once and does not flap. While raised,
an alerting reading may send a REMINDER at most once per reminder interval. A silent
device is BACK with its next reading, whatever that reading's time.

Changes follow reading time: a device's readings are taken oldest first, and one no
newer than the newest the device had sent before (a late reading, or the same reading
again) changes nothing. Readings whose value is missing or outside the sensor's range
are no evidence either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from stream_processor import contract
from stream_processor.config import Config


@dataclass(frozen=True)
class AlertRule:
    """When one alert code is raised and when it clears."""

    code: str
    measurement: str
    threshold: float
    #: Where the alert clears: the threshold moved back by the hysteresis margin.
    clear_level: float
    #: True when values above the threshold alert (HIGH_TEMPERATURE), False below.
    above: bool

    def alerting(self, value: float) -> bool:
        """Whether `value` raises the alert (the classification's own rule)."""
        return value > self.threshold if self.above else value < self.threshold

    def clears(self, value: float) -> bool:
        """Whether `value` is back past the clear level."""
        return value <= self.clear_level if self.above else value >= self.clear_level


def alert_rules(config: Config) -> tuple[AlertRule, ...]:
    """The rules of the contract's alert codes under `config`'s thresholds and margins."""
    high = config.high_temperature_c
    low = config.low_humidity_pct
    return (
        AlertRule(
            contract.HIGH_TEMPERATURE,
            contract.TEMPERATURE,
            high,
            high - config.high_temperature_clear_margin_c,
            above=True,
        ),
        AlertRule(
            contract.LOW_HUMIDITY,
            contract.HUMIDITY,
            low,
            low + config.low_humidity_clear_margin_pct,
            above=False,
        ),
    )


def any_alerting(
    rules: Sequence[AlertRule], temperature: float | None, humidity: float | None
) -> bool:
    """Whether a reading with these values raises any of `rules`' alerts (a missing or
    out-of-range value raises none)."""
    for rule in rules:
        value = _measured(rule.measurement, temperature, humidity)
        if value is not None and rule.alerting(value):
            return True
    return False


class Reading(NamedTuple):
    """What state changes are judged on: a stored reading's time, values and record."""

    seconds: float
    temperature: float | None
    humidity: float | None
    sequence_number: str

    def value(self, measurement: str) -> float | None:
        """The reading's value of `measurement` (None: missing or out of range)."""
        return _measured(measurement, self.temperature, self.humidity)


def _measured(measurement: str, temperature: float | None, humidity: float | None) -> float | None:
    return temperature if measurement == contract.TEMPERATURE else humidity


@dataclass(frozen=True)
class RaisedAlert:
    """An alert that is raised: since which reading, with what value, last notified when."""

    since: float
    value: float
    #: Reading time of the last RAISED or REMINDER: the next reminder counts from it.
    notified_at: float


@dataclass(frozen=True)
class DeviceStatus:
    """A device's alert state: its raised alerts, whether it is silent, its stored version."""

    device_id: str
    raised: dict[str, RaisedAlert] = field(default_factory=dict)
    #: When the device was last seen before it fell silent (epoch seconds); None: not silent.
    silent_since: float | None = None
    #: The stored item's version (0: none stored); every write is conditional on it.
    version: int = 0
    #: When the stored item expires (epoch seconds); 0 when none is stored.
    expires_at: float = 0.0
    #: Readings up to this time have had their changes notified (None: none yet): a batch
    #: delivered again after its changes were stored changes nothing.
    applied_through: float | None = None

    def is_quiet(self) -> bool:
        """Nothing raised and not silent."""
        return not self.raised and self.silent_since is None


class Change(NamedTuple):
    """One state change to notify: the event's facts, and the record that caused it."""

    device_id: str
    code: str
    state: str
    measurement: str | None
    value: float | None
    threshold: float | None
    clear_level: float | None
    #: The reading behind the change (epoch seconds); None for DEVICE_SILENT.
    reading_seconds: float | None
    #: When the alert, or the silence, began (epoch seconds).
    since: float
    #: The Kinesis record that caused it; empty for DEVICE_SILENT (no record).
    sequence_number: str = ""
    #: For silence events: the window that elapsed.
    silence_window_s: float | None = None


def evaluate(
    status: DeviceStatus,
    readings: Sequence[Reading],
    rules: Sequence[AlertRule],
    *,
    newest_before: float | None,
    reminder_s: float,
) -> tuple[list[Change], DeviceStatus]:
    """The changes `readings` make to `status`, and the status after them.

    `readings` are the device's readings of one batch, oldest first. `newest_before`
    is the newest reading time the device had sent before them (None: unknown or
    none); readings no newer than it change nothing.
    """
    changes: list[Change] = []
    raised = dict(status.raised)
    silent_since = status.silent_since
    if silent_since is not None and readings:
        # Back with its first reading in arrival order, late or not: it is talking again.
        first = min(readings, key=lambda r: (len(r.sequence_number), r.sequence_number))
        changes.append(
            Change(
                status.device_id,
                contract.DEVICE_SILENT,
                contract.DEVICE_BACK,
                None,
                None,
                None,
                None,
                first.seconds,
                silent_since,
                first.sequence_number,
            )
        )
        silent_since = None
    newest = newest_before
    for reading in readings:
        if newest is not None and reading.seconds <= newest:
            continue
        newest = reading.seconds
        for rule in rules:
            value = reading.value(rule.measurement)
            if value is None:
                continue
            current = raised.get(rule.code)
            state = None
            if current is None:
                if rule.alerting(value):
                    state = contract.RAISED
                    current = RaisedAlert(reading.seconds, value, reading.seconds)
                    raised[rule.code] = current
            elif rule.clears(value):
                state = contract.CLEARED
                del raised[rule.code]
            elif (
                reminder_s > 0
                and rule.alerting(value)
                and reading.seconds >= current.notified_at + reminder_s
            ):
                state = contract.REMINDER
                raised[rule.code] = replace(current, notified_at=reading.seconds)
            if state is not None and current is not None:
                changes.append(
                    Change(
                        status.device_id,
                        rule.code,
                        state,
                        rule.measurement,
                        value,
                        rule.threshold,
                        rule.clear_level,
                        reading.seconds,
                        current.since,
                        reading.sequence_number,
                    )
                )
    return changes, replace(status, raised=raised, silent_since=silent_since)


def silenced(status: DeviceStatus, last_seen: float, window_s: float) -> Change:
    """The DEVICE_SILENT change of a device last seen at `last_seen`."""
    return Change(
        status.device_id,
        contract.DEVICE_SILENT,
        contract.DEVICE_SILENT,
        None,
        None,
        None,
        None,
        None,
        last_seen,
        silence_window_s=window_s,
    )
