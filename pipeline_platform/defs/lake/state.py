"""What a lake table has taken in: the write time it covers and its reading days' versions.

Each lake table keeps one small JSON object beside the lake (never under the
crawled `lake/` prefix), the only record of what the lake holds:

- `covered`: the spans of write time merged so far, `[start, end)`, the first
  one open at its start (`null`): everything the table held at its first full
  export. The end of that first span is the lake's watermark: a catch-up starts
  there, so a failed run leaves nothing behind.
- `baseline`: when the latest full export was taken. Writes before it are in
  the lake already; a run over windows before it exports nothing.
- `days`: per reading day, the rows the lake holds, a version (the lake version
  that last changed the day) and the changes applied to the day so far. The
  warehouse loads the change sets of the versions it has not loaded (or, from a
  lake it never loaded, the days of those versions).
- `extras`: the extra payload columns the table's files carry after the fixed
  ones, in the order they first appeared, with their type.

It lives in S3, not in Dagster's instance, because the command line runs on a
throwaway instance and must still know where the last run stopped. Writes go
through S3's conditional PUT, and each merge holds a lock object, so two runs
cannot interleave their writes to one table.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

#: How old a lock may be before a run takes it over (the run that held it died).
STALE_LOCK_SECONDS = 3600
#: How long a run waits for another run's merge of the same table (a scheduled catch-up and
#: a run launched by hand meet there) before it gives up.
LOCK_WAIT_SECONDS = 900.0


class LakeBusy(RuntimeError):
    """Another run holds the table's lock, or changed its state while this run merged."""


@dataclass
class DayState:
    """One reading day (`dt=`) of a lake table."""

    rows: int
    version: int
    changes: int


@dataclass
class LakeState:
    """What a lake table holds; see the module docstring."""

    table: str
    #: Names this lake: a state lost and started again is a new lake, which the warehouse
    #: loads from scratch rather than as a continuation of the old one.
    lake_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: int = 0
    baseline: datetime | None = None
    covered: list[tuple[datetime | None, datetime]] = field(default_factory=list)
    days: dict[str, DayState] = field(default_factory=dict)
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True before the first merge: the next run starts from everything the source has."""
        return not self.covered

    @property
    def watermark(self) -> datetime | None:
        """The end of the write time covered without a gap since the first export."""
        return self.covered[0][1] if self.covered else None

    def cover(self, start: datetime | None, end: datetime) -> None:
        """Record that the writes of `[start, end)` are merged (`None`: since the beginning)."""
        spans = sorted(
            [*self.covered, (start, end)],
            key=lambda s: s[0] or datetime.min.replace(tzinfo=UTC),
        )
        merged: list[tuple[datetime | None, datetime]] = []
        for begin, finish in spans:
            if merged and (begin is None or begin <= merged[-1][1]):
                merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
            else:
                merged.append((begin, finish))
        self.covered = merged

    def apply(self, rows_by_day: dict[str, int], changes_by_day: dict[str, int]) -> int:
        """Record a merge that changed `changes_by_day` and left `rows_by_day`; the new version."""
        self.version += 1
        for day, rows in rows_by_day.items():
            before = self.days.get(day, DayState(0, 0, 0))
            self.days[day] = DayState(rows, self.version, before.changes + changes_by_day[day])
        return self.version

    def to_json(self) -> str:
        """The JSON stored in S3."""
        return json.dumps(
            {
                "table": self.table,
                "lake_id": self.lake_id,
                "version": self.version,
                "baseline": _time(self.baseline),
                "covered": [[_time(a), _time(b)] for a, b in self.covered],
                "days": {day: asdict(d) for day, d in sorted(self.days.items())},
                "extras": self.extras,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LakeState:
        """Read the JSON stored in S3."""
        raw = json.loads(text)
        return cls(
            table=raw["table"],
            lake_id=raw["lake_id"],
            version=raw["version"],
            baseline=_parse(raw["baseline"]),
            covered=[(_parse(a), _required(b)) for a, b in raw["covered"]],
            days={day: DayState(**d) for day, d in raw["days"].items()},
            extras=dict(raw.get("extras", {})),
        )


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _required(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class StateStore:
    """Lake states and locks in one bucket, under one prefix."""

    s3: Any
    bucket: str
    prefix: str

    def _key(self, table: str, suffix: str) -> str:
        return f"{self.prefix}{table}.{suffix}"

    def load(self, table: str) -> tuple[LakeState, str | None]:
        """The table's state and its object's ETag (None, with an empty state, before any)."""
        try:
            found = self.s3.get_object(Bucket=self.bucket, Key=self._key(table, "json"))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return LakeState(table), None
            raise
        return LakeState.from_json(found["Body"].read().decode()), found["ETag"]

    def load_many(self, tables: Iterable[str]) -> dict[str, LakeState]:
        """The states of `tables`, without their ETags."""
        return {table: self.load(table)[0] for table in tables}

    def save(self, state: LakeState, etag: str | None) -> None:
        """Write `state` if nobody wrote it since it was read with `etag`."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self._key(state.table, "json"),
                Body=state.to_json().encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                raise LakeBusy(
                    f"the lake state of {state.table} changed while this run merged into it; "
                    "run again"
                ) from error
            raise

    @contextmanager
    def lock(
        self, table: str, owner: str, wait_seconds: float = LOCK_WAIT_SECONDS
    ) -> Iterator[None]:
        """Hold the table's lock for the block, waiting while another live run holds it."""
        key = self._key(table, "lock")
        body = json.dumps({"owner": owner, "token": uuid.uuid4().hex, "since": time.time()})
        deadline = time.monotonic() + wait_seconds
        delay = 0.5
        while not self._acquire(key, body):
            if time.monotonic() > deadline:
                held = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
                raise LakeBusy(
                    f"{table} is being merged by {held['owner']} (since "
                    f"{datetime.fromtimestamp(held['since'], UTC):%H:%M:%S} UTC); run again "
                    "when it is done"
                )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        try:
            yield
        finally:
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _acquire(self, key: str, body: str) -> bool:
        """Take the lock if it is free or its holder died; False while a live run holds it."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), IfNoneMatch="*")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
        try:
            held = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return False  # released in between: try again
            raise
        holder = json.loads(held["Body"].read())
        if time.time() - holder["since"] < STALE_LOCK_SECONDS:
            return False
        # The holder died without releasing: take over, if nobody did in between.
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body.encode(), IfMatch=held["ETag"]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                return False
            raise
        return True
