"""Stop a long-running command on Ctrl-C or SIGTERM in any phase, start-up included.

`stop_on_signals()` makes SIGINT and SIGTERM raise `StopRequested` in the main thread,
wherever it is (waiting for a server to bind, deploying stacks, waiting for Dagster),
so the command's `finally` blocks stop what it started. Every blocking wait in the main
thread must be one Python can interrupt (`Event.wait`, `time.sleep`, socket calls, a
lock with or without timeout all are). The first signal raises; later ones while the
command stops are ignored, so a second Ctrl-C cannot cut the clean-up short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopRequested(BaseException):
    """Ctrl-C or SIGTERM asked the command to stop (a BaseException, like KeyboardInterrupt,
    so `except Exception` in the code it interrupts does not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals(
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[threading.Event]:
    """Inside the block, the first of `signals` raises `StopRequested` in the main thread.

    Yields an event set at the same moment, for threads that poll for a stop. Outside the
    main thread (where Python cannot install handlers) the block runs unguarded. The
    previous handlers come back when the block ends.
    """
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            return  # already stopping: let the clean-up finish
        stopping.set()
        raise StopRequested(signum)

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
