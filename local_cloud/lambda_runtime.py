"""Run a deployed Lambda function's handler in this process.

The local cloud never starts containers: it imports the module named by the
function's `Handler` and calls it with a Lambda-shaped context. Functions share
this process, so their environment variables land in the one `os.environ`
(applied before the handler module's first import, the function's cold start)
and a timeout is reported through the context but not enforced.

What a function writes to stdout goes, as in Lambda, to its log rather than to
the console: with a `log_dir`, to `<log_dir>/<function name>.log` (the stand-in
for the `/aws/lambda/<name>` log group), and each invocation's lines are handed
to `on_log_lines` (the local cloud extracts their EMF metrics, as CloudWatch does).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[dict[str, Any], "LambdaContext"], Any]

# One import at a time: two functions cold-starting together must not
# interleave their environment updates with each other's imports.
_COLD_START_LOCK = threading.Lock()
_STDOUT_LOCK = threading.Lock()
_invoking = threading.local()


class _FunctionStdout:
    """Stands in for `sys.stdout`: a thread running a function writes to that function's
    log; every other thread writes where stdout pointed before."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def _target(self) -> Any:
        log = getattr(_invoking, "log", None)
        return self.console if log is None else log

    def write(self, text: str) -> int:
        """Write to the running function's log, or to the console."""
        return self._target().write(text)

    def flush(self) -> None:
        """Flush the running function's log, or the console."""
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


class _InvocationLog:
    """One invocation's stdout: appended to the function's log file, and kept as lines."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        """Append to the log file and keep the text."""
        self._parts.append(text)
        return self._file.write(text)

    def flush(self) -> None:
        """Flush the log file."""
        self._file.flush()

    def lines(self) -> list[str]:
        """What this invocation wrote, line by line."""
        return "".join(self._parts).splitlines()


@contextmanager
def _stdout_to(log_path: Path) -> Iterator[_InvocationLog]:
    """While the body runs, this thread's stdout writes are appended to `log_path`."""
    with _STDOUT_LOCK:
        # Installed on first use and left in place: it passes every other thread through,
        # and whoever replaces sys.stdout later (a test's capture) simply drops it.
        if not isinstance(sys.stdout, _FunctionStdout):
            sys.stdout = _FunctionStdout(sys.stdout)
    with log_path.open("a", encoding="utf-8") as file:
        _invoking.log = _InvocationLog(file)
        try:
            yield _invoking.log
        finally:
            _invoking.log = None


@dataclass
class LambdaContext:
    """The context object a Python Lambda handler receives (the attributes handlers read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    _deadline: float = field(repr=False)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of a deployed function's configuration the runtime needs."""

    name: str
    arn: str
    handler: str
    role: str
    timeout_s: int = 3
    memory_mb: int = 128
    version: str = "$LATEST"
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, config: dict[str, Any]) -> FunctionConfig:
        """Build from a `GetFunctionConfiguration` response."""
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            role=config.get("Role", ""),
            timeout_s=int(config.get("Timeout") or 3),
            memory_mb=int(config.get("MemorySize") or 128),
            version=config.get("Version") or "$LATEST",
            # Lambda's variables are always strings; moto hands back template
            # numbers as numbers, so normalise them as the real service would.
            environment={
                k: str(v)
                for k, v in ((config.get("Environment") or {}).get("Variables") or {}).items()
            },
        )


def _fresh_module(name: str) -> ModuleType:
    """A private instance of the handler's module, as a new Lambda sandbox would load it.

    Module-level state (clients, configuration read at cold start) then belongs
    to this function alone, even when another function or another local cloud in
    the same process runs the same code with other settings.
    """
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalFunction:
    """A deployed function whose handler is imported on first use and called in-process."""

    def __init__(
        self,
        config: FunctionConfig,
        log_dir: str | Path | None = None,
        on_log_lines: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.config = config
        #: Where the function's stdout goes; None leaves it on the console.
        self.log_path = None if log_dir is None else Path(log_dir) / f"{config.name}.log"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.on_log_lines = on_log_lines
        self._handler: Handler | None = None

    def _load(self) -> Handler:
        module_name, _, attribute = self.config.handler.rpartition(".")
        if not module_name:
            raise ValueError(f"handler must be 'module.function', got {self.config.handler!r}")
        with _COLD_START_LOCK:
            if self._handler is None:
                # Cold start: the function's settings are in the environment before
                # its module runs, as they are in a fresh Lambda sandbox.
                os.environ.update(self.config.environment)
                self._handler = getattr(_fresh_module(module_name), attribute)
        return self._handler

    def new_context(self) -> LambdaContext:
        """A fresh context for one invocation, its clock starting now."""
        name = self.config.name
        return LambdaContext(
            function_name=name,
            function_version=self.config.version,
            invoked_function_arn=self.config.arn,
            memory_limit_in_mb=self.config.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[{self.config.version}]local",
            _deadline=time.monotonic() + self.config.timeout_s,
        )

    def close(self) -> None:
        """Nothing to stop: the handler runs in the caller's threads."""

    def invoke(self, event: dict[str, Any], context: LambdaContext | None = None) -> Any:
        """Call the handler; an import failure or exception propagates as the function error."""
        handler = self._handler or self._load()
        if self.log_path is None:
            return handler(event, context or self.new_context())
        with _stdout_to(self.log_path) as log:
            try:
                return handler(event, context or self.new_context())
            finally:
                if self.on_log_lines is not None:
                    self.on_log_lines(log.lines())
