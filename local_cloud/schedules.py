"""Scheduled EventBridge rules, fired: the emulator stores them and never runs them.

Every second the runner reads the enabled rules with a `rate(...)` schedule expression
(through the emulator's EventBridge API, on every bus) and, when one is due, hands a
"Scheduled Event" (source `aws.events`, the rule in `resources`, as EventBridge sends
it) for each of its targets to the event delivery. A rule first fires one period after
the runner first sees it, then once a period. `cron(...)` expressions are not run
locally (the runner says so once per rule).

`every`, when given, fires every scheduled rule that often instead of at its rate:
for tests and the demo, which cannot wait a minute for the silence check.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a `rate(...)` expression in seconds; None for anything else."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, account: str, region: str, now: float) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now,
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRunner:
    """Fires the emulator's scheduled rules; `start`, `stop`."""

    def __init__(
        self,
        events: Any,
        deliver: Callable[[str, dict[str, Any], dict[str, Any]], None],
        *,
        every: float | None = None,
        tick: float = 1.0,
    ) -> None:
        """`events` is the emulator's EventBridge client; `deliver(rule_arn, target, event)`
        takes each target's event."""
        self._events = events
        self._deliver = deliver
        self._every = every
        self._tick = min(tick, every) if every else tick
        self._due: dict[str, float] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def start(self) -> ScheduleRunner:
        """Start firing."""
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop firing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.fire_due(time.time())
            except Exception:
                log.exception("firing scheduled rules failed")

    def fire_due(self, now: float) -> int:
        """Fire every scheduled rule due at `now`; return how many fired."""
        fired = 0
        for rule in self._scheduled_rules():
            arn = rule["Arn"]
            period = self._every or rate_seconds(rule["ScheduleExpression"])
            if period is None:
                if arn not in self._warned:
                    self._warned.add(arn)
                    log.warning(
                        "rule %s: %s is not run locally (only rate(...) schedules are)",
                        rule["Name"],
                        rule["ScheduleExpression"],
                    )
                continue
            due = self._due.setdefault(arn, now + period)
            if now < due:
                continue
            self._due[arn] = max(due + period, now)
            account, region = arn.split(":")[4], arn.split(":")[3]
            event = scheduled_event(arn, account, region, now)
            bus = rule.get("EventBusName") or "default"
            targets = self._events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)
            for target in targets.get("Targets", []):
                self._deliver(arn, target, event)
            fired += 1
        self.fired += fired
        return fired

    def _scheduled_rules(self) -> list[dict[str, Any]]:
        buses = [b["Name"] for b in self._events.list_event_buses().get("EventBuses", [])]
        rules = []
        for bus in buses or ["default"]:
            for rule in self._events.list_rules(EventBusName=bus).get("Rules", []):
                if rule.get("ScheduleExpression") and rule.get("State") == "ENABLED":
                    rules.append(rule)
        return rules
