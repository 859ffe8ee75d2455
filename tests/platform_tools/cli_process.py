"""`pipeline-platform` run as a user runs it: a process of its own, read line by line, signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLI = str(Path(sys.executable).with_name("pipeline-platform"))


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any AWS setting (a fresh shell), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **extra}


def run_cli(
    *args: str, timeout: float = 60.0, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one command to its end; the test fails (TimeoutExpired) if it takes over `timeout`."""
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_environ(),
        cwd=cwd,
        check=False,
    )


def start_up(state_dir: Path) -> tuple[CliProcess, int, int]:
    """`pipeline-platform up` on free ports, as another terminal runs it, keeping its state in
    `state_dir`; returns the process, its AWS port and its MQTT port."""
    from local_cloud.ports import free_port

    aws_port, mqtt_port = free_port(), free_port()
    up = CliProcess.start(
        "up",
        "--aws-port",
        str(aws_port),
        "--mqtt-port",
        str(mqtt_port),
        "--state-dir",
        str(state_dir),
    )
    return up, aws_port, mqtt_port


@dataclass
class CliProcess:
    """A long-running command in a process group of its own, and the lines it printed."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, *args: str, env: dict[str, str] | None = None) -> CliProcess:
        """Start `pipeline-platform ARGS`, stdout and stderr together."""
        process = subprocess.Popen(
            [CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env if env is not None else clean_environ(),
            start_new_session=True,  # its own group: the test can see whether anything outlives it
        )
        running = cls(process)
        running._reader = threading.Thread(target=running._read, daemon=True)
        running._reader.start()
        return running

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> None:
        """Block until a printed line contains `text`; raise AssertionError if it never does."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self._reader_alive()
                if left <= 0 or ended:
                    raise AssertionError(f"no line with {text!r} ({timeout:g} s):\n{self.output()}")
                self._changed.wait(min(left, 0.5))

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def signal_and_wait(self, sig: int, timeout: float, group: bool = False) -> int:
        """Send `sig` (to the whole group, as a terminal's Ctrl-C does, when `group`), and
        return the exit status; raise AssertionError if it is still running after `timeout`."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:g} s after {signal.Signals(sig).name}:\n{self.output()}"
            ) from None
        if self._reader is not None:
            self._reader.join(5)
        return code

    def group_is_empty(self, timeout: float = 5.0) -> bool:
        """Whether every process of its group has ended (waiting up to `timeout` for them)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def kill(self) -> None:
        """End the whole group at once (cleanup after a failed test)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(10)

    def output(self) -> str:
        """The last lines printed, for failure messages."""
        return "\n".join(self.lines[-40:])
