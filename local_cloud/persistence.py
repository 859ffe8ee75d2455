"""The local cloud keeps its state across restarts: moto's backends, snapshotted to disk.

What the emulator holds (the tables, the buckets, the stream with its sequence numbers, a
table's stream with its records, the queue, the catalog, the deployed stacks, and whatever
else a request created) lives
in moto's backends in the emulator's process. `Snapshotter` writes all of them, with the
event source mappings' checkpoints taken at the same moment, to `<state dir>/emulator.pickle`:

- every `interval` seconds (default 2) when a request changed something since the last
  snapshot (`ChangeTracker` counts the requests that may write), and once more at a clean
  stop. Snapshots never overlap: the next capture waits `interval` seconds after the last
  one was written, or `SPACING` times as long as that one took, whichever is longer, so
  writing snapshots never takes more than a quarter of a core however large the state
  grows. After `kill -9`, what is lost is at most what changed since the last written
  snapshot's capture: that wait plus twice a snapshot's writing time (`bound_seconds`).
  A snapshot's cost grows with the state: about half a second of CPU for 20,000
  readings with their stream records on a 2-core machine (0.2-0.6 s measured, against
  1.1-1.6 s before items, values and shards had the compact forms below). Written by
  the forked child at its lower priority while a fleet publishes 1,000 readings/s on a
  shared 2-core machine, a snapshot of up to 20,000 readings took 0.5-5 s (once 16 s,
  with the machine saturated), so the bound was 2-25 s there: the benchmark
  (`python -m benchmarks local_path`) reports the last snapshot's seconds.
- consistently: no request is in flight while the state is captured (`StateGuard`: every
  request holds it shared, the capture holds it exclusive), so a snapshot never holds half
  a request, and a shard's sequence numbers stay contiguous. The checkpoints are read
  before the capture: the function finished every record up to a checkpoint before it was
  written, so what the snapshot's checkpoint says is done is in the snapshot's table, and a
  restored mapping redelivers at most a few batches (writes are idempotent) and never
  skips one. The same holds for a table's stream: moto keeps its records in the table
  (numbered from the shard's first sequence number by position, the shard id a constant),
  so they come back with the table, numbered as the checkpoints saved with them expect.
  A checkpoint past the end of its shard (a stream whose records were lost while its
  checkpoint was kept) reads the shard from its start (`esm_runner`) rather than skip the
  records numbered anew.
- without stopping the emulator for long: where the platform can fork, the capture is a
  fork (a copy-on-write image of the process, taken in milliseconds) and the child
  pickles and writes while the emulator goes on serving, at a lower scheduling priority
  (`CHILD_NICENESS`) so that a busy machine gives the live path the CPU first (a slower
  snapshot then spaces the next ones further apart: the bound below says by how much);
  elsewhere it pickles in place.
- atomically: written to a temporary file, fsynced, renamed over the previous snapshot
  (and the folder fsynced), so a crash mid-write leaves the previous snapshot whole.

`restore()` puts a snapshot's backends back before the emulator serves. A snapshot
from another moto version is not loaded (its objects may not fit): the cloud starts empty
and says so.

Pickling moto's objects needs a few stand-ins (`StatePickler`): locks are pickled as new
locks, weak dictionaries as plain ones rebuilt weak, `defaultdict(lambda: {})` as a
`defaultdict(dict)`, and private keys (KMS) as their DER bytes. DynamoDB items and Kinesis
records, by far the most numerous objects, are pickled as plain values and rebuilt without
moto's per-attribute size checks (they passed them when written).
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import logging
import operator
import os
import pickle
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_cloud import moto_internals

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "emulator.pickle"
#: Seconds between snapshots while something changes.
DEFAULT_INTERVAL_S = 2.0
#: The wait between snapshots is at least this many times the last one's writing time.
SPACING = 3.0
#: How much a forked snapshot writer lowers its scheduling priority (`os.nice`).
CHILD_NICENESS = 10
_FORMAT = 1

# Requests that only read: REST reads, and the JSON protocols' read actions by name.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_ACTION = re.compile(r"^(Describe|List|Get|Scan|Query|BatchGet|Head|Search|Lookup)")


class StateGuard:
    """Shared for every change to moto's state, exclusive for a snapshot; counts changes.

    A readers-writer lock: requests run side by side (`shared`), a snapshot waits for
    those in flight and holds new ones back while it captures (`exclusive`).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._writer = False
        self._waiting_writers = 0
        #: Increases with every change that may need saving.
        self.generation = 0

    @contextlib.contextmanager
    def shared(self, changes: bool = True) -> Iterator[None]:
        """Hold the state for one request (or in-process change)."""
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._active += 1
            if changes:
                self.generation += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the state alone: no request is in flight inside the block."""
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._active:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def request_changes_state(environ: dict[str, Any]) -> bool:
    """Whether a request may change the emulator's state (reads never trigger a snapshot)."""
    if environ.get("REQUEST_METHOD", "GET") in _READ_METHODS:
        return False
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return not _READ_ACTION.match(target.rpartition(".")[2])
    return True


class ChangeTracker:
    """WSGI middleware: every request holds the `StateGuard` shared while moto handles it."""

    def __init__(self, app: Any, guard: StateGuard) -> None:
        self.app = app
        self.guard = guard

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Handle one request with the state held; the body is produced inside the hold."""
        with self.guard.shared(changes=request_changes_state(environ)):
            response = self.app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


# --- pickling moto's objects ----------------------------------------------------------


def _private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, password=None)


def _weak_values(items: dict[Any, Any]) -> weakref.WeakValueDictionary[Any, Any]:
    return weakref.WeakValueDictionary(items)


def _dynamodb_item(cls: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> Any:
    # The item passed moto's size checks when it was written; they are not run again.
    return moto_internals.new_item(cls, hash_key, range_key, attrs)


def _dynamodb_item_from_image(cls: Any, hash_key: Any, range_key: Any, image: str) -> Any:
    from local_cloud.dynamodb_exports import remember_image

    attrs = {
        name: moto_internals.value_from_json(value) for name, value in json.loads(image).items()
    }
    item = _dynamodb_item(cls, hash_key, range_key, attrs)
    remember_image(item, image)
    return item


def _dynamo_type(cls: Any, kind: str, value: Any) -> Any:
    obj = cls.__new__(cls)
    obj.type = kind
    obj.value = value  # members of a list or map come back as DynamoTypes already
    return obj


def _shard(
    cls: Any,
    state: dict[str, Any],
    record_cls: Any,
    fields: tuple[str, ...],
    keys: list[Any],
    rows: list[tuple[Any, ...]],
) -> Any:
    shard = _object(cls, state)
    records: collections.OrderedDict[Any, Any] = collections.OrderedDict()
    new = record_cls.__new__
    for key, row in zip(keys, rows, strict=True):
        record = new(record_cls)
        record.__dict__.update(zip(fields, row, strict=True))
        records[key] = record
    shard.records = records
    return shard


def _object(cls: Any, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


# A blob attribute ("B" or "BS") holds bytes that an image carries as base64 text; an item
# with one (or with an attribute so named) is pickled attribute by attribute instead.
_BINARY_IN_IMAGE = re.compile(r'"BS?"\s*:')

_Reducer = Callable[[Any], Any]


class StatePickler(pickle.Pickler):
    """A pickler for moto's backends: stand-ins for what plain pickle refuses or is slow at.

    Which stand-in (if any) an object needs depends only on its type, so the choice is
    made once per type: pickle asks `reducer_override` about every object it meets.
    The most numerous objects get compact forms: a DynamoDB item is its image (the
    DynamoDB JSON text the change journal keeps on it) and its keys, a DynamoDB value its
    type and value, a Kinesis shard its records as rows of their fields.
    """

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        Item, DynamoType = moto_internals.dynamodb_classes()
        Shard, Record = moto_internals.kinesis_record_classes()

        self._record = Record
        self._reducers: dict[type, _Reducer | None] = {
            Item: self._item,
            DynamoType: self._dynamo_type,
            Shard: self._shard,
            Record: self._plain_object,
            type(threading.Lock()): lambda obj: (threading.Lock, ()),
            type(threading.RLock()): lambda obj: (threading.RLock, ()),
        }

    def reducer_override(self, obj: Any) -> Any:
        """How to pickle `obj` when plain pickle cannot (or is slow); NotImplemented otherwise."""
        cls = type(obj)
        try:
            reducer = self._reducers[cls]
        except KeyError:
            reducer = self._reducers[cls] = _reducer_for(cls)
        return NotImplemented if reducer is None else reducer(obj)

    @staticmethod
    def _plain_object(obj: Any) -> Any:
        return (_object, (type(obj), obj.__dict__))

    @staticmethod
    def _dynamo_type(obj: Any) -> Any:
        if len(obj.__dict__) != 2:  # something beyond moto's type and value: pickle it all
            return (_object, (type(obj), obj.__dict__))
        return (_dynamo_type, (type(obj), obj.type, obj.value))

    @staticmethod
    def _item(obj: Any) -> Any:
        from local_cloud.dynamodb_exports import known_image

        image = known_image(obj)
        hash_key, range_key = moto_internals.item_keys(obj)
        if image is not None and not _BINARY_IN_IMAGE.search(image):
            return (_dynamodb_item_from_image, (type(obj), hash_key, range_key, image))
        attributes = dict(moto_internals.item_attributes(obj))
        return (_dynamodb_item, (type(obj), hash_key, range_key, attributes))

    def _shard(self, obj: Any) -> Any:
        state = dict(obj.__dict__)
        records = state.pop("records")
        first = next(iter(records.values()), None)
        if first is None:
            return (_shard, (type(obj), state, self._record, (), [], []))
        fields = tuple(first.__dict__)
        width = len(fields)
        # Rows need every record to be a plain moto Record with the same fields (the
        # row getter raises KeyError for a record without one of them).
        if width < 2 or not all(
            type(r) is self._record and len(r.__dict__) == width for r in records.values()
        ):
            return NotImplemented
        row = operator.itemgetter(*fields)
        try:
            rows = [row(r.__dict__) for r in records.values()]
        except KeyError:
            return NotImplemented
        return (_shard, (type(obj), state, self._record, fields, list(records), rows))


def _reducer_for(cls: type) -> _Reducer | None:
    """The stand-in for objects of `cls`, or None when plain pickle does them well."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if issubclass(cls, weakref.WeakValueDictionary):
        return lambda obj: (_weak_values, (dict(obj.items()),))
    if issubclass(cls, collections.defaultdict):
        return _defaultdict
    if issubclass(cls, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        return _key
    return None


def _defaultdict(obj: Any) -> Any:
    factory = obj.default_factory
    if getattr(factory, "__name__", "") == "<lambda>":
        made = factory()
        if type(made) in (dict, list, set) and not made:
            return (collections.defaultdict, (type(made),), None, None, iter(obj.items()))
    return NotImplemented


def _key(obj: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    der = obj.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (_private_key, (der,))


# --- what a snapshot holds ------------------------------------------------------------


@dataclass
class Snapshot:
    """moto's backends by (service, account, region), and the mappings' checkpoints."""

    backends: dict[tuple[str, str, str], Any]
    checkpoints: list[tuple[str, str, int]]
    moto_version: str
    saved_at: float
    format: int = _FORMAT


def capture(checkpoints: list[tuple[str, str, int]]) -> Snapshot:
    """This process's moto backends (the live objects: pickle them before they change)."""
    backends = {
        (service, account, region): backend
        for service, account, region, backend in moto_internals.backends_in_use()
    }
    return Snapshot(backends, checkpoints, moto_internals.version(), time.time())


def write(snapshot: Snapshot, path: Path) -> int:
    """Pickle `snapshot` to `path` atomically; return the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            buffered = io.BufferedWriter(file, buffer_size=1 << 20)  # type: ignore[arg-type]
            StatePickler(buffered).dump(snapshot)
            buffered.flush()
            size = file.tell()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return size


def read(path: Path) -> Snapshot | None:
    """The snapshot at `path`, or None when there is none or it cannot be used (logged)."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as file:
            snapshot = pickle.load(file)
    except Exception as exc:
        log.warning("the saved state in %s cannot be read (%s); starting empty", path, exc)
        return None
    if not isinstance(snapshot, Snapshot) or snapshot.format != _FORMAT:
        log.warning("the saved state in %s has another format; starting empty", path)
        return None
    if snapshot.moto_version != moto_internals.version():
        log.warning(
            "the saved state in %s is from moto %s, this is moto %s; starting empty",
            path,
            snapshot.moto_version,
            moto_internals.version(),
        )
        return None
    return snapshot


def restore(snapshot: Snapshot) -> None:
    """Put the snapshot's backends in place of this process's (before anything serves)."""
    for (service, account, region), backend in snapshot.backends.items():
        moto_internals.put_backend(service, account, region, backend)


# --- taking snapshots -----------------------------------------------------------------


class Snapshotter:
    """Snapshots moto's state to `path` while it changes, and once more at `stop()`.

    `checkpoints` returns the event source mappings' checkpoints (read before each
    capture); `close_in_child` are sockets a forked writer closes first, so it never holds
    the emulator's port. Counters (`snapshots`, `last_seconds`, `last_bytes`) say how it goes.
    """

    def __init__(
        self,
        path: Path,
        guard: StateGuard,
        checkpoints: Callable[[], list[tuple[str, str, int]]] = list,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        close_in_child: Callable[[], list[Any]] = list,
        fork: bool | None = None,
    ) -> None:
        self.path = path
        self.guard = guard
        self.checkpoints = checkpoints
        self.interval = interval
        self.close_in_child = close_in_child
        self.fork = hasattr(os, "fork") if fork is None else fork
        self._saved_generation = guard.generation
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one snapshot at a time
        self.snapshots = 0
        self.failures = 0
        self.last_seconds = 0.0
        self.last_bytes = 0

    @property
    def bound_seconds(self) -> float:
        """How many seconds of changes `kill -9` loses at most: from the capture of the last
        written snapshot, through the interval, to the end of writing the next one."""
        return self.wait_seconds + 2 * self.last_seconds

    @property
    def wait_seconds(self) -> float:
        """How long the next snapshot waits after the last one was written."""
        return max(self.interval, SPACING * self.last_seconds)

    def start(self) -> Snapshotter:
        """Snapshot in the background from now on."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="snapshotter", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.wait_seconds):
            try:
                self.snapshot_if_changed()
            except Exception:
                self.failures += 1
                log.exception("snapshot of the local cloud's state failed; will try again")

    def snapshot_if_changed(self) -> bool:
        """Snapshot when something changed since the last one; whether it did."""
        if self.guard.generation == self._saved_generation:
            return False
        self.snapshot(background=self.fork)
        return True

    def snapshot(self, background: bool = False) -> None:
        """Capture and write the state now (in a forked child when `background`)."""
        with self._lock:
            started = time.monotonic()
            if background:
                size = self._snapshot_forked()
            else:
                with self.guard.exclusive():
                    generation = self.guard.generation
                    snapshot = capture(self.checkpoints())
                    size = write(snapshot, self.path)
                self._saved_generation = generation
            self.snapshots += 1
            self.last_seconds = time.monotonic() - started
            self.last_bytes = size

    def _snapshot_forked(self) -> int:
        with self.guard.exclusive():
            generation = self.guard.generation
            checkpoints = self.checkpoints()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: the state as of the fork, for as long as it writes
                code = 1
                try:
                    os.close(read_end)
                    for sock in self.close_in_child():
                        with contextlib.suppress(OSError):
                            sock.close()
                    # Background work: the live cloud (and the devices feeding it) come
                    # first for the CPU; on an idle core this changes nothing.
                    with contextlib.suppress(OSError):
                        os.nice(CHILD_NICENESS)
                    size = write(capture(checkpoints), self.path)
                    os.write(write_end, str(size).encode())
                    code = 0
                finally:
                    os._exit(code)
        os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as answer:
                reported = answer.read()
        finally:
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not reported:
            raise RuntimeError(f"the snapshot writer exited with status {status}")
        self._saved_generation = generation
        return int(reported)

    def stop(self) -> None:
        """Stop the background snapshots and write the final state (nothing may change now)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.snapshot(background=False)
