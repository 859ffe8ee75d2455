"""`pipeline-platform ui` on free ports, and a headless Chromium to look at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from local_cloud.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a shared machine with no network: no GPU, no sandbox (containers), nothing
# that phones home or updates itself in the background.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The local cloud deploys its stacks and `dagster dev` loads the code location first.
UI_START_TIMEOUT = 240.0


@dataclass
class RunningUi:
    """A running `pipeline-platform ui` process, where its UI is and where it logs."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the command's output (the function's batch lines left out)."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join([line for line in text if not line.startswith('{"_aws')][-lines:])

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM, as a service manager or Ctrl-C would send; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _start_ui(state_dir: Path) -> RunningUi:
    log = state_dir / "ui.log"
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "platform_tools.cli",
        "ui",
        "--port",
        str(port),
        "--aws-port",
        str(free_port()),
        "--mqtt-port",
        str(free_port()),
        "--state-dir",
        str(state_dir / "platform"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    ui = RunningUi(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + UI_START_TIMEOUT
    while time.monotonic() < deadline:
        if "ready: Dagster UI at" in log.read_text(errors="replace"):
            return ui
        if process.poll() is not None:
            pytest.fail(f"pipeline-platform ui exited with {process.returncode}:\n{ui.log_tail()}")
        time.sleep(0.5)
    ui.stop()
    pytest.fail(f"pipeline-platform ui not ready in {UI_START_TIMEOUT:.0f} s:\n{ui.log_tail()}")


@pytest.fixture(scope="module")
def running_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUi]:
    """`pipeline-platform ui` for the module; stopped (and its group killed) afterwards."""
    ui = _start_ui(tmp_path_factory.mktemp("ui"))
    try:
        yield ui
    finally:
        try:
            ui.stop()
        except subprocess.TimeoutExpired:
            os.killpg(ui.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (no downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (install the Debian package: apt-get install chromium)")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
