"""Ctrl-C and SIGTERM for the long-running commands: stop within seconds, in any phase.

A handler that only sets a flag is honoured only where the code looks at the flag; while
the local cloud deploys its stacks, or a fleet connects, nobody looks. Inside
`stop_on_signals()` the first SIGINT or SIGTERM instead raises `Interrupted` in the main
thread wherever it is (Python runs signal handlers between bytecodes and when a blocking
wait, sleep or read is interrupted), so the command unwinds through its `finally` clauses
and stops what it started, in order.

Python drops an exception raised while the main thread runs a weakref callback or a
`__del__` (it prints "Exception ignored in ..."), so until the command says it is
stopping, `Interrupted` is raised again every second. Once it is stopping, a signal
no longer raises (that would cut the stopping short): stopping is bounded instead.
If it takes longer than `grace` seconds from the signal, or a second signal arrives
(an impatient Ctrl-C), `force()` ends the child processes and this process exits at
once.
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
#: The exit status when stopping had to be cut short.
FORCED_EXIT = 1
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: How long a command may take to stop before it is forced to.
DEFAULT_GRACE_SECONDS = 15.0
#: How often `Interrupted` is raised again until the command starts stopping.
_REDELIVER_SECONDS = 1.0


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, as KeyboardInterrupt is, so that an
    `except Exception` on the way (a retry loop, a best-effort cleanup) cannot swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class SignalStop:
    """The state of `stop_on_signals()`: whether a stop was asked, and whether it is under way."""

    def __init__(
        self,
        grace: float,
        force: Callable[[], None],
        say: Callable[[str], None],
        notify: threading.Event | None = None,
    ):
        self.grace = grace
        self._notify = notify
        self._force = force
        self._say = say
        self.signum: int | None = None
        self._stopping = False
        self._redelivering = False
        self._done = threading.Event()

    @property
    def requested(self) -> bool:
        """Whether SIGINT or SIGTERM has arrived."""
        return self.signum is not None

    def stopping(self) -> None:
        """Stopping begins: from now on a signal hurries it (see the module) and never raises."""
        self._stopping = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler. Python runs it in the main thread, as it does `stopping()`,
        so the two never race; `_redeliver` only asks for it to run again."""
        redelivered, self._redelivering = self._redelivering, False
        first = self.signum is None
        if first:
            self.signum = signum
            threading.Thread(target=self._watch, name="stop-watchdog", daemon=True).start()
        if first and self._notify is not None:
            self._stopping = True
            self._notify.set()
            return
        if not self._stopping:
            raise Interrupted(self.signum)
        if not redelivered:
            self.force(f"{signal.Signals(signum).name} again while stopping")

    def _watch(self) -> None:
        """Until stopping starts, raise `Interrupted` again every second: an exception raised
        while the main thread ran a weakref callback or a `__del__` is printed and dropped,
        as a KeyboardInterrupt would be. Then bound the stopping itself."""
        deadline = time.monotonic() + self.grace
        while not self._done.wait(_REDELIVER_SECONDS):
            if time.monotonic() >= deadline:
                self.force(f"not stopped in {self.grace:g} s")
            if not self._stopping and self.signum is not None:
                self._redelivering = True
                # A real signal, so that a blocking wait in the main thread is interrupted too.
                signal.pthread_kill(threading.main_thread().ident or 0, self.signum)

    def force(self, why: str) -> None:
        """End the children, then this process, at once."""
        self._say(f"forcing the stop ({why})")
        try:
            self._force()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(FORCED_EXIT)

    def done(self) -> None:
        """The block ended: no more redelivery, no forcing."""
        self._done.set()


@contextlib.contextmanager
def stop_on_signals(
    *,
    grace: float = DEFAULT_GRACE_SECONDS,
    force: Callable[[], None] = lambda: None,
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
    notify: threading.Event | None = None,
) -> Iterator[SignalStop]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` in the main thread (see the
    module); call `stopping()` on the yielded object when the block starts to stop on its own.

    With `notify`, the first signal sets that event instead of raising, for a block whose
    every wait is short and looks at it (a fleet sending); the stop is bounded all the same.
    Outside the main thread signals cannot be handled, so there it only yields.
    """
    state = SignalStop(grace, force, say, notify)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {sig: signal.signal(sig, state.handle) for sig in SIGNALS}
    try:
        yield state
    finally:
        state.done()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
