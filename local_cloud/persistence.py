"""The local cloud keeps its state across restarts: moto's backends, snapshotted to disk.

What the emulator holds (the table, the buckets, the stream with its sequence numbers,
the queue, the catalog, the deployed stacks, and whatever else a request created) lives
in moto's backends in the emulator's process. `Snapshotter` writes all of them, with the
event source mappings' checkpoints taken at the same moment, to `<state dir>/emulator.pickle`:

- every `interval` seconds (default 2) when a request changed something since the last
  snapshot (`ChangeTracker` counts the requests that may write), and once more at a clean
  stop. Snapshots never overlap: the next capture waits `interval` seconds after the last
  one was written, or `SPACING` times as long as that one took, whichever is longer, so
  writing snapshots never takes more than a quarter of a core however large the state
  grows. After `kill -9`, what is lost is at most what changed since the last written
  snapshot's capture: that wait plus twice a snapshot's writing time (`bound_seconds`).
  A snapshot's cost grows with the state: about 2 s of CPU for 20,000 readings with
  their stream records on a 2-core machine.
- consistently: no request is in flight while the state is captured (`StateGuard`: every
  request holds it shared, the capture holds it exclusive), so a snapshot never holds half
  a request, and a shard's sequence numbers stay contiguous. The checkpoints are read
  before the capture: the function finished every record up to a checkpoint before it was
  written, so what the snapshot's checkpoint says is done is in the snapshot's table, and a
  restored mapping redelivers at most a few batches (writes are idempotent) and never
  skips one.
- without stopping the emulator for long: where the platform can fork, the capture is a
  fork (a copy-on-write image of the process, taken in milliseconds) and the child
  pickles and writes while the emulator goes on serving; elsewhere it pickles in place.
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
import logging
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

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "emulator.pickle"
#: Seconds between snapshots while something changes.
DEFAULT_INTERVAL_S = 2.0
#: The wait between snapshots is at least this many times the last one's writing time.
SPACING = 3.0
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
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    item = cls.__new__(cls)
    item.hash_key = hash_key
    item.range_key = range_key
    # The item passed moto's size checks when it was written; do not run them again
    # (they cost time quadratic in the number of attributes).
    item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(item.attrs, attrs)
    return item


def _object(cls: Any, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


class StatePickler(pickle.Pickler):
    """A pickler for moto's backends: stand-ins for what plain pickle refuses or is slow at."""

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from moto.dynamodb.models.dynamo_type import Item
        from moto.kinesis.models import Record

        self._lock_types = (type(threading.Lock()), type(threading.RLock()))
        self._key_types = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
        self._item = Item
        self._record = Record

    def reducer_override(self, obj: Any) -> Any:
        """How to pickle `obj` when plain pickle cannot (or is slow); NotImplemented otherwise."""
        cls = type(obj)
        if cls is self._item:
            return (_dynamodb_item, (cls, obj.hash_key, obj.range_key, dict(obj.attrs)))
        if cls is self._record:
            return (_object, (cls, obj.__dict__))
        if isinstance(obj, self._lock_types):
            # A new, free lock: nobody holds the restored object's lock yet.
            return (threading.Lock if cls is self._lock_types[0] else threading.RLock, ())
        if isinstance(obj, weakref.WeakValueDictionary):
            return (_weak_values, (dict(obj.items()),))
        if isinstance(obj, collections.defaultdict):
            factory = obj.default_factory
            if getattr(factory, "__name__", "") == "<lambda>":
                made = factory()  # type: ignore[misc]
                if type(made) in (dict, list, set) and not made:
                    return (collections.defaultdict, (type(made),), None, None, iter(obj.items()))
        if isinstance(obj, self._key_types):
            from cryptography.hazmat.primitives import serialization

            der = obj.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return (_private_key, (der,))
        return NotImplemented


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
    import moto
    from moto.core.base_backend import BackendDict

    backends: dict[tuple[str, str, str], Any] = {}
    in_use: list[Any] = list(getattr(BackendDict, "_instances"))  # the services used so far  # noqa: B009
    for backend_dict in in_use:
        for account, region, backend in backend_dict.iter_backends():
            backends[(backend_dict.service_name, account, region)] = backend
    return Snapshot(backends, checkpoints, moto.__version__, time.time())


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
    import moto

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
    if snapshot.moto_version != moto.__version__:
        log.warning(
            "the saved state in %s is from moto %s, this is moto %s; starting empty",
            path,
            snapshot.moto_version,
            moto.__version__,
        )
        return None
    return snapshot


def restore(snapshot: Snapshot) -> None:
    """Put the snapshot's backends in place of this process's (before anything serves)."""
    from moto.backends import get_backend

    for (service, account, region), backend in snapshot.backends.items():
        backend_dict = get_backend(service)  # type: ignore[call-overload]
        # Creating the account's entry registers the service as in use (for snapshots).
        dict.__setitem__(backend_dict[account], region, backend)


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
