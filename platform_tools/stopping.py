"""Stop a long-running command on Ctrl-C or SIGTERM in any phase, start-up included.

`stop_on_signals()` makes SIGINT and SIGTERM raise `StopRequested` in the main thread,
wherever it is (waiting for a server to bind, deploying stacks, waiting for Dagster),
so the command's `finally` blocks stop what it started. Every blocking wait in the main
thread must be one Python can interrupt (`Event.wait`, `time.sleep`, socket calls, a
lock with or without timeout all are). The first signal raises; later ones while the
command stops do not raise again, so they cannot cut the clean-up short.

A command may also bound its stop (`grace`), for `ui`, `demo` and `simulate`:

- Python drops an exception raised while the main thread runs a weakref callback or a
  `__del__` (it prints "Exception ignored in ..."), as it would a KeyboardInterrupt; so
  until the command says it is stopping (`SignalStop.stopping()`), `StopRequested` is
  raised again every second;
- if the stop takes longer than `grace` seconds from the first signal, or a user sends
  the signal twice more while it stops (an impatient Ctrl-C), the command's child
  processes get SIGTERM (they stop on their own: the local cloud's AWS side writes its
  last snapshot) and this process exits at once with status 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

#: The exit status of a task (the demo, a simulation) stopped before it finished: the
#: shell's status for Ctrl-C, whichever of SIGINT or SIGTERM arrived.
INTERRUPTED_EXIT = 128 + signal.SIGINT
#: The exit status when a stop had to be cut short.
FORCED_EXIT = 1
#: The bound the developer tools (`ui`, `demo`, `simulate`) put on their stop: they
#: stop in seconds; this only guarantees a hung clean-up cannot keep them running.
TOOL_STOP_GRACE_SECONDS = 30.0
#: How often `StopRequested` is raised again until the command starts stopping.
_REDELIVER_SECONDS = 1.0


class StopRequested(BaseException):
    """Ctrl-C or SIGTERM asked the command to stop (a BaseException, like KeyboardInterrupt,
    so `except Exception` in the code it interrupts does not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def terminate_descendants() -> None:
    """SIGTERM to every process this one started, and theirs (psutil comes with dagster)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.terminate()


class SignalStop:
    """What `stop_on_signals()` yields: whether a stop was asked, and when stopping began."""

    def __init__(
        self,
        grace: float | None,
        force: Callable[[], None],
        say: Callable[[str], None],
        notify: threading.Event | None,
    ) -> None:
        self.grace = grace
        self._force = force
        self._say = say
        self._notify = notify
        self.signum: int | None = None
        self._stopping = False
        self._redelivering = False
        self._repeats = 0
        self._done = threading.Event()

    @property
    def requested(self) -> bool:
        """Whether SIGINT or SIGTERM has arrived."""
        return self.signum is not None

    def stopping(self) -> None:
        """The command is stopping (on a signal or on its own): a signal no longer raises."""
        self._stopping = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler. Python runs it in the main thread, as it does `stopping()`,
        so the two never race; the watchdog only asks for it to run again."""
        redelivered, self._redelivering = self._redelivering, False
        first = self.signum is None
        if first:
            self.signum = signum
            if self.grace is not None:
                threading.Thread(target=self._watch, name="stop-watchdog", daemon=True).start()
            if self._notify is not None:
                self._stopping = True
                self._notify.set()
                return
        # Without a bound (`up`), only the first signal raises: a second Ctrl-C while the
        # command stops must not cut its clean-up short.
        if not self._stopping and (first or self.grace is not None):
            raise StopRequested(self.signum or signum)
        if redelivered or self.grace is None:
            return
        self._repeats += 1
        if self._repeats == 1:
            self._say(f"still stopping; {signal.Signals(signum).name} once more forces it")
        else:
            self.force(f"{signal.Signals(signum).name} while stopping")

    def _watch(self) -> None:
        """Raise `StopRequested` again every second until stopping begins; end the process
        if stopping outlasts `grace`."""
        assert self.grace is not None
        deadline = time.monotonic() + self.grace
        while not self._done.wait(_REDELIVER_SECONDS):
            if time.monotonic() >= deadline:
                self.force(f"not stopped in {self.grace:g} s")
            if not self._stopping and self.signum is not None:
                self._redelivering = True
                # A real signal, so that a blocking wait in the main thread is interrupted too.
                signal.pthread_kill(threading.main_thread().ident or 0, self.signum)

    def force(self, why: str) -> None:
        """End the child processes, then this process, at once."""
        self._say(f"forcing the stop ({why})")
        try:
            self._force()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(FORCED_EXIT)

    def done(self) -> None:
        """The guarded block ended: no more raising again, no forcing."""
        self._done.set()


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_signals(
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
    *,
    grace: float | None = None,
    force: Callable[[], None] = terminate_descendants,
    notify: threading.Event | None = None,
    say: Callable[[str], None] = _to_stderr,
) -> Iterator[SignalStop]:
    """Inside the block, the first of `signals` raises `StopRequested` in the main thread.

    With `grace`, the stop is bounded (see the module): call `stopping()` on the yielded
    object when the command begins to stop. With `notify`, the first signal sets that
    event instead of raising, for a command whose every wait is short and looks at it.
    Outside the main thread (where Python cannot install handlers) the block runs
    unguarded. The previous handlers come back when the block ends.
    """
    state = SignalStop(grace, force, say, notify)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {sig: signal.signal(sig, state.handle) for sig in signals}
    try:
        yield state
    finally:
        state.done()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
