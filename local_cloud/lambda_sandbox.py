"""A deployed Lambda function run in execution environments of its own: worker processes.

Lambda runs each function in a sandbox: a process with the function's own environment
variables, its code imported at the first invocation (the cold start) and kept warm
for the next ones, one invocation at a time per sandbox, as many sandboxes as
invocations run at once. Events go in and responses come out as JSON, and a function
that runs past its timeout is stopped and its sandbox thrown away. `SandboxFunction`
does the same with worker processes (`python -m local_cloud.lambda_sandbox`), so the
function's work runs beside the emulator on a core of its own rather than under the
emulator's interpreter lock, and functions never share `os.environ`.

It has the interface of `lambda_runtime.LocalFunction` (`config`, `invoke`, `close`),
which runs handlers in the caller's process instead (for tests whose handlers record
what they were called with in memory).

What a function writes to stdout is appended to its log (`<log dir>/<name>.log`, the
stand-in for the `/aws/lambda/<name>` log group) and each invocation's lines are handed
to `on_log_lines` in the caller (the local cloud puts the EMF metrics in them into
CloudWatch). A function error comes back as `FunctionError` with the error's type and
message, as Lambda reports `errorType` and `errorMessage`; a timeout or a sandbox that
died as `FunctionError` too (`Sandbox.Timedout`, `Runtime.ExitError`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from local_cloud.lambda_runtime import FunctionConfig, LambdaContext

log = logging.getLogger(__name__)

#: How long a sandbox may take to start (interpreter, imports) before it is given up.
START_TIMEOUT_S = 60.0
#: How long a sandbox gets to stop when asked before it is killed.
STOP_TIMEOUT_S = 5.0


class FunctionError(Exception):
    """The function failed: its own exception, a timeout, or a sandbox that died."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message


def lambda_variables(config: FunctionConfig, region: str) -> dict[str, str]:
    """The reserved variables Lambda sets in every execution environment of a function."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "_HANDLER": config.handler,
    }


class _Sandbox:
    """One worker process and the connection to it."""

    def __init__(self, config: FunctionConfig, environ: dict[str, str], log_path: Path | None):
        parent, child = socket.socketpair()
        command = [sys.executable, "-m", "local_cloud.lambda_sandbox", "--fd", str(child.fileno())]
        if log_path is not None:
            command += ["--log", str(log_path)]
        try:
            self.process = subprocess.Popen(command, env=environ, pass_fds=(child.fileno(),))
        finally:
            child.close()
        self.connection = Connection(parent.detach())
        self.connection.send((config.handler, config.name, config.arn, config.memory_mb))
        if not self.connection.poll(START_TIMEOUT_S):
            self.kill()
            raise FunctionError("Runtime.Unavailable", "the execution environment did not start")
        self.connection.recv()  # "ready": the interpreter runs; the handler loads on first use

    def invoke(self, event: bytes, request_id: str, timeout_s: float) -> tuple[str, Any, list[str]]:
        """Send one event; (kind, result, log lines), or FunctionError on a timeout or exit."""
        deadline = time.monotonic() + timeout_s
        try:
            self.connection.send((event, request_id, timeout_s))
            while not self.connection.poll(0.05):
                if self.process.poll() is not None:
                    raise EOFError
                if time.monotonic() > deadline:
                    self.kill()
                    raise FunctionError(
                        "Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds"
                    )
            kind, result, lines = self.connection.recv()
        except (EOFError, OSError):
            self.kill()
            code = self.process.poll()
            raise FunctionError(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited ({code})"
            ) from None
        return kind, result, lines

    def stop(self) -> None:
        """Ask the worker to end, and make sure it has."""
        with contextlib.suppress(OSError):
            self.connection.close()  # the worker ends when its connection closes
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """End the worker at once (a timeout, as Lambda stops a sandbox)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        with contextlib.suppress(OSError):
            self.connection.close()


class SandboxFunction:
    """A deployed function whose invocations run in worker processes, one at a time each."""

    def __init__(
        self,
        config: FunctionConfig,
        region: str,
        log_dir: str | Path | None = None,
        on_log_lines: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.config = config
        self.region = region
        self.log_path = None if log_dir is None else Path(log_dir) / f"{config.name}.log"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.on_log_lines = on_log_lines
        self._idle: list[_Sandbox] = []
        self._all: set[_Sandbox] = set()
        self._lock = threading.Lock()
        self._closed = False

    def _environ(self) -> dict[str, str]:
        environ = dict(os.environ)
        # The function's code is importable where the caller's is (the deployment
        # package is this checkout).
        environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        environ.update(lambda_variables(self.config, self.region))
        environ.update(self.config.environment)
        return environ

    def _take(self) -> _Sandbox:
        with self._lock:
            if self._closed:
                raise FunctionError("Runtime.Unavailable", "the function's runner has stopped")
            if self._idle:
                return self._idle.pop()
        sandbox = _Sandbox(self.config, self._environ(), self.log_path)
        with self._lock:
            self._all.add(sandbox)
        return sandbox

    def _give_back(self, sandbox: _Sandbox) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(sandbox)
                return
        sandbox.stop()

    def invoke(self, event: dict[str, Any], context: LambdaContext | None = None) -> Any:
        """Invoke the function with `event` in a free sandbox; its response, or FunctionError."""
        request_id = context.aws_request_id if context is not None else str(uuid.uuid4())
        timeout = (
            context.get_remaining_time_in_millis() / 1000
            if context is not None
            else float(self.config.timeout_s)
        )
        payload = json.dumps(event).encode()
        sandbox = self._take()
        try:
            kind, result, lines = sandbox.invoke(payload, request_id, timeout)
        except FunctionError:
            with self._lock:
                self._all.discard(sandbox)  # killed: the next invocation starts a new one
            raise
        self._give_back(sandbox)
        if self.on_log_lines is not None and lines:
            self.on_log_lines(lines)
        if kind == "error":
            error_type, message = result
            raise FunctionError(error_type, message)
        return None if result is None else json.loads(result)

    def close(self) -> None:
        """Stop every sandbox (the runner stops)."""
        with self._lock:
            self._closed = True
            sandboxes = list(self._all)
            self._all.clear()
            self._idle.clear()
        for sandbox in sandboxes:
            sandbox.stop()


# --- the worker ------------------------------------------------------------------------


class _Lines:
    """The worker's stdout: appended to the function's log, and kept for the caller."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        """Append to the log and keep the text."""
        self._parts.append(text)
        return int(self._file.write(text)) if self._file is not None else len(text)

    def flush(self) -> None:
        """Flush the log."""
        if self._file is not None:
            self._file.flush()

    def take(self) -> list[str]:
        """The lines written since the last call."""
        text, self._parts = "".join(self._parts), []
        return text.splitlines()


def _serve(connection: Connection, log_path: str | None) -> None:
    handler_name, name, arn, memory_mb = connection.recv()
    log_file = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    lines = _Lines(log_file)
    sys.stdout = lines
    handler: Callable[..., Any] | None = None
    load_error: tuple[str, str] | None = None
    connection.send("ready")
    while True:
        try:
            event, request_id, timeout_s = connection.recv()
        except (EOFError, OSError):
            return
        context = LambdaContext(
            function_name=name,
            function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            invoked_function_arn=arn,
            memory_limit_in_mb=memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            _deadline=time.monotonic() + timeout_s,
        )
        if handler is None and load_error is None:
            module_name, _, attribute = handler_name.rpartition(".")
            try:
                handler = getattr(importlib.import_module(module_name), attribute)
            except Exception as exc:  # Lambda reports it on every invocation
                load_error = ("Runtime.ImportModuleError", f"Unable to import module: {exc}")
        if load_error is not None:
            connection.send(("error", load_error, lines.take()))
            continue
        assert handler is not None
        result: Any
        try:
            response = handler(json.loads(event), context)
        except Exception as exc:
            traceback.print_exc(file=lines)  # as Lambda logs an unhandled error
            kind, result = "error", (type(exc).__name__, str(exc))
        else:
            try:
                kind, result = "ok", None if response is None else json.dumps(response).encode()
            except (TypeError, ValueError) as exc:
                kind, result = (
                    "error",
                    ("Runtime.MarshalError", f"Unable to marshal response: {exc}"),
                )
        lines.flush()
        connection.send((kind, result, lines.take()))


def main(argv: list[str] | None = None) -> int:
    """Run one execution environment until its connection closes."""
    parser = argparse.ArgumentParser(prog="python -m local_cloud.lambda_sandbox")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the local cloud to handle
    connection = Connection(socket.socket(fileno=args.fd).detach())
    _serve(connection, args.log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
