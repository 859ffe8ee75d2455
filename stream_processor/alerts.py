"""Per batch: the alert state changes the batch's readings make, stored once each.

For the devices of a batch:

1. know their state: from memory when this execution environment processed the
   shard's previous batch too (its `lease`, read as the batch starts, still names it)
   and the device sent within the silence window (so the silence check cannot have
   marked it), else from their `alerts` items (one BatchGetItem per 100 devices). When
   the shard's devices were last seen is kept in memory too, and stored in the shard's
   `seen` items at most once per half silence window, or within a minute when a device
   is new to them (`_ShardSeen`);
2. decide the changes (`alert_rules.evaluate`). A device remembered as quiet whose
   readings alert nothing (most devices, most batches) is settled at once. Only when a
   device's readings would change something is the readings table asked for the newest
   reading the device had sent before the batch, so a late reading changes nothing;
   for the remembered devices that is asked before the batch's readings are written
   (`plan`), so it is answered beside those writes rather than after them;
3. store each changed device's state with the newest reading time whose changes are
   now decided, and the changes' events in its `outbox` (one put, conditional on the
   version read).

The function does not send the events itself: the state table's stream takes each
write with an outbox to the alert notifier (`alert_notifier`), which puts its events on
the bus. A change is therefore announced exactly when it is stored, and a batch
delivered again (Lambda's retries, bisection) finds it stored and stores nothing twice.
A state that could not be stored is reported in `failed` (its device's records) for
Lambda to deliver again, and decided again then. The function also spends no time on
EventBridge, whose requests take longer than DynamoDB's.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from stream_processor import contract
from stream_processor.alert_events import outbox
from stream_processor.alert_rules import (
    Change,
    DeviceStatus,
    Reading,
    alert_rules,
    any_alerting,
    evaluate,
)
from stream_processor.alert_state import AlertStateTable
from stream_processor.config import Config
from stream_processor.retry import Deadline

log = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86400
#: Attempts at storing a device's state when someone else wrote it meanwhile.
_SAVE_ATTEMPTS = 4
#: Concurrent requests of the alert work (state reads, look-ups, writes).
ALERT_CONCURRENCY = 4
#: A remembered state is trusted only for a device processed less than the silence window
#: minus this ago: the silence check (on another clock) cannot have marked it since.
_SILENCE_MARGIN_S = 60.0
#: A device new to a shard's `seen` items is written within this long.
_NEW_DEVICE_WRITE_S = 60.0


@dataclass
class TrackResult:
    """What a batch's alert work did, and the records to deliver again."""

    failed: list[str]
    changes: int = 0
    lookups: int = 0
    error: str | None = None


class Lease(NamedTuple):
    """A shard's lease as a batch starts: whether this environment processed the shard's
    previous batch, and whether it holds the lease now (it held it, or took it)."""

    held: bool
    ours: bool


@dataclass
class _ShardSeen:
    """When a shard's devices were last seen, as this environment knows it."""

    devices: dict[str, float] = field(default_factory=dict)
    #: Whether the stored `seen` items are this environment's last write (no other
    #: environment has had the shard since); if not, they are read before the next write.
    current: bool = False
    #: How many `seen` items held the shard when last read or written.
    stored_items: int = 0
    #: When this environment last wrote them, and when it writes them next (a device new
    #: to them brings that forward).
    written_at: float = 0.0
    due_at: float = 0.0


class _FirstPass(NamedTuple):
    """A device's changes decided on its stored state as if none of its readings were late,
    and whether they depend on the newest reading the device had sent before."""

    changes: list[Change]
    after: DeviceStatus
    uncertain: bool


@dataclass
class BatchPlan:
    """A batch's readings as the alert work takes them, split on what this environment
    remembers of the shard (`AlertTracker.plan`), with the look-ups already started."""

    readings: Sequence[tuple[str, str, float, float | None, float | None]]
    devices: set[str]
    now: float
    shard: str
    lease: Future[Lease]
    #: The remembered states of the batch's devices, and their newest reading times where
    #: this environment knows them (the settled devices' moved on to the batch's).
    remembered: dict[str, DeviceStatus]
    newest: dict[str, float]
    #: Devices remembered as quiet, with no reading alerting: nothing can change for them.
    settled: set[str]
    #: The other devices' readings, oldest first, and the remembered ones' first passes.
    by_device: dict[str, list[Reading]]
    first: dict[str, _FirstPass]
    #: Look-ups of the newest reading a device had sent before the batch.
    started: dict[str, Future[float | None]]


class AlertTracker:
    """Turns batches of stored readings into alert events; one per execution environment."""

    def __init__(self, config: Config, dynamodb: Any) -> None:
        assert config.alert_state_table is not None
        self._config = config
        self._rules = alert_rules(config)
        self._state = AlertStateTable(dynamodb, config.alert_state_table, config.table_name)
        self._ttl_s = config.alert_state_ttl_days * _SECONDS_PER_DAY
        #: The `seen` items are written once per half window: the silence check then finds
        #: a live device's time less than a window old, and asks the readings table only
        #: about devices that really stopped.
        self._seen_interval_s = config.silence_window_s / 2
        self._seen: dict[str, _ShardSeen] = {}
        #: This execution environment, as shard leases name it.
        self._owner = uuid.uuid4().hex
        #: The devices' states as stored, by shard, while this environment holds its lease;
        #: the newest reading time of each device whose readings it has all seen since it
        #: last learnt it (so a change needs no look-up); and when this environment last
        #: processed each device (its batch's time).
        self._known: dict[str, dict[str, DeviceStatus]] = {}
        self._newest: dict[str, dict[str, float]] = {}
        self._processed_at: dict[str, float] = {}
        self._known_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=ALERT_CONCURRENCY, thread_name_prefix="alert-tracker"
        )

    def close(self) -> None:
        """Stop the threads (tools and tests)."""
        self._executor.shutdown(wait=True)

    def begin(self, shard: str, deadline: Deadline) -> Future[Lease]:
        """Start a batch of `shard`: read its lease, and take it if another environment (or
        none) holds it. Run as the batch starts, beside its classification."""
        return self._executor.submit(self._hold_lease, shard, deadline)

    def _hold_lease(self, shard: str, deadline: Deadline) -> Lease:
        try:
            owner, version = self._state.lease_owner(shard, deadline)
            if owner == self._owner:
                return Lease(held=True, ours=True)
            taken = self._state.take_lease(shard, self._owner, version, deadline)
            return Lease(held=False, ours=taken)
        except Exception:
            log.exception("the lease of %s could not be read or taken", shard)
        return Lease(held=False, ours=False)

    def plan(
        self,
        readings: Sequence[tuple[str, str, float, float | None, float | None]],
        now: float,
        shard: str,
        lease: Future[Lease],
        deadline: Deadline,
    ) -> BatchPlan:
        """Split a batch's readings on what this environment remembers of `shard`, and start
        the look-ups its remembered devices' changes call for.

        `readings` are `(device_id, sequence number, seconds, temperature, humidity)` of
        every record the batch stores (duplicates included: their sequence numbers belong
        to the batch); `lease` is what `begin` answered for the shard, or will. Run before
        the batch's writes go out, so the look-ups are answered beside the writes rather than
        after them. The memory is the lease's to confirm (`track`); a look-up's answer does
        not depend on it, and serves either way.
        """
        devices = {reading[0] for reading in readings}
        remembered, newest = self._recall(shard, devices, now)
        settled, by_device = self._split(readings, remembered, newest)
        first = {
            d: self._first_pass(remembered[d], rs) for d, rs in by_device.items() if d in remembered
        }
        started = {
            d: self._executor.submit(self._sent_before, d, by_device[d], deadline)
            for d, pass_ in first.items()
            if pass_.uncertain and d not in newest
        }
        return BatchPlan(
            readings,
            devices,
            now,
            shard,
            lease,
            remembered,
            newest,
            settled,
            by_device,
            first,
            started,
        )

    def track(self, plan: BatchPlan, deadline: Deadline) -> TrackResult:
        """Store the state changes of a planned batch's readings, with their events.

        Returns the sequence numbers to report as failed.
        """
        readings, now, shard = plan.readings, plan.now, plan.shard
        if not readings:
            return TrackResult([])
        lease = plan.lease.result()
        statuses, newest, first = dict(plan.remembered), plan.newest, dict(plan.first)
        settled, by_device = plan.settled, plan.by_device
        if not lease.held:
            # Another environment had the shard, or may have had it: what this one remembers
            # of it may be out of date, and every device's state is read.
            self._forget(shard)
            statuses, newest, first = {}, {}, {}
            settled, by_device = self._split(readings, {}, newest)
        missing = [d for d in by_device if d not in statuses]
        if missing:
            try:
                statuses.update(self._state.statuses(missing, deadline))
            except Exception as exc:
                # Without the state nothing can be decided: the whole batch comes back.
                error = f"reading the alert state: {type(exc).__name__}: {exc}"
                return TrackResult([reading[1] for reading in readings], 0, 0, error)
            first.update((d, self._first_pass(statuses[d], by_device[d])) for d in missing)
        statuses = {d: statuses[d] for d in by_device}

        decided, undecided, applied = self._decide(
            by_device, statuses, newest, first, plan.started, deadline
        )
        lookups = len(applied) - len(newest.keys() & applied.keys())
        error = (
            f"looking up the newest readings of {len(undecided)} devices failed"
            if undecided
            else ""
        )
        to_save = [
            device_id
            for device_id, (changes, after) in decided.items()
            if changes
            or device_id in applied
            or self._needs_saving(statuses[device_id], after, now)
        ]
        if to_save and not lease.ours:
            # The lease names another environment (this one could not take it), which trusts
            # what it remembers of the shard and would not learn of a state stored here. So
            # nothing is stored, and the devices that would change come back, to be decided by
            # a delivery that takes the lease.
            blocked = {d for d in to_save if decided[d][0]}
            if blocked:
                undecided |= blocked
                error = error or (
                    f"the shard's lease was not taken: {len(blocked)} devices' changes come back"
                )
            to_save = []
        failed = self._first_records(undecided, by_device)
        saves = {
            device_id: self._executor.submit(
                self._save,
                statuses[device_id],
                decided[device_id][1],
                decided[device_id][0],
                deadline,
            )
            for device_id in to_save
        }
        stored = {d: s for d, s in statuses.items() if d not in undecided}
        changed = 0
        for device_id, job in saves.items():
            try:
                stored[device_id] = job.result()
            except Exception as exc:
                del stored[device_id]
                error = error or f"storing the alert state: {type(exc).__name__}: {exc}"
                # Neither stored nor announced: the records come back and the changes are
                # decided again, with the same event ids.
                failed += self._first_records({device_id}, by_device)
            else:
                changed += len(decided[device_id][0])
        for device_id, known_newest in newest.items():
            if device_id in by_device:
                batch_newest = by_device[device_id][-1].seconds
                applied.setdefault(device_id, max(known_newest, batch_newest))
            else:
                applied[device_id] = known_newest  # settled: `_split` counted the batch in
        self._remember(shard, list(by_device), settled, stored, applied, now)
        self._see(shard, plan.devices, lease, now, deadline)
        return TrackResult(failed, changed, lookups, error or None)

    def _split(
        self,
        readings: Sequence[tuple[str, str, float, float | None, float | None]],
        remembered: dict[str, DeviceStatus],
        newest: dict[str, float],
    ) -> tuple[set[str], dict[str, list[Reading]]]:
        """The batch's settled devices, and the other devices' readings, oldest first.

        Most devices, most batches, are settled: remembered as quiet, with no reading
        alerting. Nothing can change for them: they are noted as processed and seen, and no
        object is made for their readings. Their newest reading times in `newest` are moved
        on to the batch's."""
        alerting = {d for d, _, _, t, h in readings if any_alerting(self._rules, t, h)}
        settled = {d for d, s in remembered.items() if d not in alerting and s.is_quiet()}
        by_device: dict[str, list[Reading]] = defaultdict(list)
        for device_id, sequence, seconds, temperature, humidity in readings:
            if device_id not in settled:
                by_device[device_id].append(Reading(seconds, temperature, humidity, sequence))
            elif device_id in newest and seconds > newest[device_id]:
                newest[device_id] = seconds
        for device_readings in by_device.values():
            device_readings.sort(
                key=lambda r: (r.seconds, len(r.sequence_number), r.sequence_number)
            )
        return settled, dict(by_device)

    def _recall(
        self, shard: str, devices: set[str], now: float
    ) -> tuple[dict[str, DeviceStatus], dict[str, float]]:
        """The stored states this environment remembers of `devices`, and, of those, the
        newest reading time where it knows it. A device is remembered only if this
        environment processed it recently enough that the silence check cannot have marked
        it since."""
        recent = now - self._config.silence_window_s + _SILENCE_MARGIN_S
        with self._known_lock:
            known = self._known.get(shard, {})
            processed = self._processed_at
            remembered = {
                d: known[d] for d in devices if d in known and processed.get(d, 0.0) >= recent
            }
            shard_newest = self._newest.get(shard, {})
            newest = {d: shard_newest[d] for d in remembered if d in shard_newest}
        return remembered, newest

    def _forget(self, shard: str) -> None:
        """Forget the states and reading times remembered of `shard`."""
        with self._known_lock:
            self._known[shard], self._newest[shard] = {}, {}

    def _remember(
        self,
        shard: str,
        devices: list[str],
        settled: set[str],
        stored: dict[str, DeviceStatus],
        newest: dict[str, float],
        now: float,
    ) -> None:
        """Note the batch's devices as processed now. Keep the states of `devices` as stored
        after the batch, with the newest reading times known, and forget the devices left
        uncertain; the `settled` devices' states did not change."""
        with self._known_lock:
            known = self._known.setdefault(shard, {})
            shard_newest = self._newest.setdefault(shard, {})
            processed = self._processed_at
            for device_id in settled:
                processed[device_id] = now
                if device_id in newest:
                    shard_newest[device_id] = newest[device_id]
            for device_id in devices:
                processed[device_id] = now
                if device_id in stored:
                    known[device_id] = stored[device_id]
                else:
                    known.pop(device_id, None)
                if device_id in stored and device_id in newest:
                    shard_newest[device_id] = newest[device_id]
                else:
                    shard_newest.pop(device_id, None)

    def _first_pass(self, status: DeviceStatus, readings: list[Reading]) -> _FirstPass:
        """The device's changes as if none of its readings were late, and whether any of them
        needs the device's newest reading to be sure (all but DEVICE_BACK do)."""
        if status.is_quiet() and not any(
            any_alerting(self._rules, r.temperature, r.humidity) for r in readings
        ):
            return _FirstPass([], status, False)  # most devices read from the table
        changes, after = evaluate(
            status,
            readings,
            self._rules,
            newest_before=None,
            reminder_s=self._config.alert_reminder_s,
        )
        uncertain = any(change.state != contract.DEVICE_BACK for change in changes)
        return _FirstPass(changes, after, uncertain)

    def _decide(
        self,
        by_device: dict[str, list[Reading]],
        statuses: dict[str, DeviceStatus],
        newest: dict[str, float],
        first: dict[str, _FirstPass],
        started: dict[str, Future[float | None]],
        deadline: Deadline,
    ) -> tuple[dict[str, tuple[list[Change], DeviceStatus]], set[str], dict[str, float]]:
        """Each device's changes and status after the batch; the devices that could not be
        decided (their look-up failed); for the devices with changes, the newest reading
        time whose changes are now decided (stored with their state).

        `first` is each device's first pass. A device whose changes depend on the newest
        reading it had sent before the batch takes it from `newest` (the times this
        environment knows) or from its look-up: the one in `started`, or one started here."""
        decided = {d: (pass_.changes, pass_.after) for d, pass_ in first.items()}
        jobs: dict[str, Future[float | None]] = {}
        for device_id, pass_ in first.items():
            if not pass_.uncertain:
                continue
            if device_id in newest:
                jobs[device_id] = Future()
                jobs[device_id].set_result(newest[device_id])
            else:
                jobs[device_id] = started.get(device_id) or self._executor.submit(
                    self._sent_before, device_id, by_device[device_id], deadline
                )
        undecided: set[str] = set()
        applied: dict[str, float] = {}
        for device_id, job in jobs.items():
            try:
                sent_before = job.result()
            except Exception:
                log.exception("looking up the newest reading of %s failed", device_id)
                undecided.add(device_id)
                del decided[device_id]
                continue
            # Readings up to the newest the device had sent before, or up to the newest whose
            # changes were already stored (this batch, delivered before), change nothing.
            known = [t for t in (sent_before, statuses[device_id].applied_through) if t is not None]
            newest_known = max(known) if known else None
            decided[device_id] = evaluate(
                statuses[device_id],
                by_device[device_id],
                self._rules,
                newest_before=newest_known,
                reminder_s=self._config.alert_reminder_s,
            )
            newest_in_batch = by_device[device_id][-1].seconds
            applied[device_id] = max(newest_known or newest_in_batch, newest_in_batch)
            changes, after = decided[device_id]
            decided[device_id] = (changes, replace(after, applied_through=applied[device_id]))
        return decided, undecided, applied

    def _sent_before(
        self, device_id: str, readings: list[Reading], deadline: Deadline
    ) -> float | None:
        """The newest reading time the device had sent before this batch (None: none)."""
        return self._state.newest_before(
            device_id,
            frozenset(r.sequence_number for r in readings),
            len({r.seconds for r in readings}),
            deadline,
        )

    def _needs_saving(self, before: DeviceStatus, after: DeviceStatus, now: float) -> bool:
        if after.raised != before.raised or after.silent_since != before.silent_since:
            return True
        # A long-raised alert keeps its item alive: refreshed once half its retention is gone.
        return not before.is_quiet() and before.expires_at < now + self._ttl_s / 2

    def _save(
        self,
        before: DeviceStatus,
        after: DeviceStatus,
        changes: list[Change],
        deadline: Deadline,
    ) -> DeviceStatus:
        """Store `after` over `before`, with the events of `changes`, and return the state as
        stored; when the silence check wrote in between, on top of what it wrote (the raised
        alerts are this function's, the silence is the check's unless this batch announced
        the device back)."""
        status = after
        events = outbox(changes) if changes else None
        for _ in range(_SAVE_ATTEMPTS):
            expires_at = time.time() + self._ttl_s
            if self._state.save(status, expires_at, deadline, events):
                return replace(status, version=status.version + 1, expires_at=int(expires_at))
            current = self._state.status(before.device_id, deadline)
            silent = current.silent_since
            if before.silent_since is not None and after.silent_since is None:
                silent = None if silent == before.silent_since else silent
            status = replace(
                current,
                raised=after.raised,
                silent_since=silent,
                applied_through=after.applied_through,
            )
        raise RuntimeError(f"the alert state of {before.device_id} kept changing")

    def _see(
        self, shard: str, devices: set[str], lease: Lease, now: float, deadline: Deadline
    ) -> None:
        """Note that the shard's `devices` were seen `now`, and store the shard's `seen`
        items when due. Only the lease's holder writes them, and when another environment
        may have written them since it last read them, it reads them first: no device
        another environment saw is dropped. A failed read or write is tried again with the
        next batch; the silence check asks the readings table about a device before it
        announces it."""
        with self._known_lock:
            seen = self._seen.setdefault(shard, _ShardSeen())
            if not lease.held:
                seen.current = False  # another environment had the shard, or may have had it
            new = any(d not in seen.devices for d in devices)
            for device_id in devices:
                seen.devices[device_id] = now
            if new:
                # A device new to the items is written within a minute: a fleet that grows by a
                # device a batch costs a write a minute, not one a batch.
                seen.due_at = min(seen.due_at, seen.written_at + _NEW_DEVICE_WRITE_S)
            if not lease.ours or now < seen.due_at:
                return
            read_first = not seen.current
        if read_first:
            try:
                stored, items = self._state.seen(shard, deadline)
            except Exception:
                log.exception("the seen items of %s could not be read", shard)
                return
        with self._known_lock:
            if read_first:
                for device_id, seen_at in stored.items():
                    if seen_at > seen.devices.get(device_id, 0.0):
                        seen.devices[device_id] = seen_at
                seen.stored_items = items
            retained = now - self._ttl_s
            seen.devices = {d: t for d, t in seen.devices.items() if t >= retained}
            snapshot = dict(seen.devices)
        try:
            items = self._state.save_seen(
                shard, snapshot, seen.stored_items, now + self._ttl_s, deadline
            )
        except Exception:
            log.exception("the seen items of %s could not be stored", shard)
            return
        with self._known_lock:
            seen.current = True
            seen.stored_items = items
            seen.written_at = now
            # After a takeover the times of the devices this environment has not seen yet
            # are the previous holder's, up to half a window old: written again sooner.
            seen.due_at = now + self._seen_interval_s / (2 if read_first else 1)

    @staticmethod
    def _first_records(devices: set[str], by_device: dict[str, list[Reading]]) -> list[str]:
        """Each device's earliest record in the batch: Lambda delivers the batch again from
        the lowest of them, and the device's changes are decided and sent again."""
        failed = []
        for device_id in devices:
            records = [r.sequence_number for r in by_device[device_id]]
            failed.append(min(records, key=lambda s: (len(s), s)))
        return failed
