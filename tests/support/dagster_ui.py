"""`pipeline-platform ui` started as a user starts it, and its Dagster UI clicked as a user clicks.

Shared by the browser test (`tests/e2e/`) and the UI benchmark (`benchmarks/bench_dagster_ui.py`),
so the benchmark times exactly the flow the test proves works: "Materialize all", the latest
partition of whatever partition dialog appears, the launch button, no run config typed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

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
READY = "ready: Dagster UI at"
#: How the run page shows a run that has ended.
FINAL_STATUS = re.compile(r"^(Success|Failure|Canceled)$")
#: How long a click or a check waits for the UI: its queries run behind a loaded code
#: location on a shared machine, and Playwright's 5 s default for checks is too short there.
UI_WAIT_MS = 30_000
expect.set_options(timeout=UI_WAIT_MS)
#: The partition dialog's launch button: "Launch 1 run", "Launch run", "Launch backfill"...
LAUNCH_BUTTON = re.compile(r"(^|\s)Launch( \d+ runs?| run| backfill)$")


class UiNotReady(RuntimeError):
    """`pipeline-platform ui` exited, or did not print its ready line in time."""


@dataclass
class RunningUi:
    """A running `pipeline-platform ui` process: where its UI, emulator and broker are."""

    process: subprocess.Popen[bytes]
    url: str
    aws_endpoint: str
    mqtt_port: int
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

    def kill(self) -> None:
        """End the whole process group at once (after a failed stop)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(10)


def start_ui(state_dir: Path, timeout: float = UI_START_TIMEOUT) -> RunningUi:
    """`pipeline-platform ui` on free ports, in a process group of its own; wait until ready."""
    log = state_dir / "ui.log"
    port, aws_port, mqtt_port = free_port(), free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "platform_tools.cli",
        "ui",
        "--port",
        str(port),
        "--aws-port",
        str(aws_port),
        "--mqtt-port",
        str(mqtt_port),
        "--state-dir",
        str(state_dir / "platform"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    ui = RunningUi(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", mqtt_port, log
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if READY in log.read_text(errors="replace"):
                return ui
            if process.poll() is not None:
                raise UiNotReady(
                    f"pipeline-platform ui exited with {process.returncode}:\n{ui.log_tail()}"
                )
            time.sleep(0.5)
        raise UiNotReady(f"pipeline-platform ui not ready in {timeout:.0f} s:\n{ui.log_tail()}")
    except BaseException:  # not ready, or the caller interrupted: leave nothing running
        try:
            ui.stop()
        except subprocess.TimeoutExpired:
            ui.kill()
        raise


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium (no downloaded browser), headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def open_page(browser: Browser, url: str) -> Page:
    """A new page at `url`, with the first-visit newsletter dialog skipped if it shows."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(UI_WAIT_MS)
    page.add_locator_handler(
        page.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click()
    )
    page.goto(url, wait_until="domcontentloaded")
    return page


@dataclass(frozen=True)
class LaunchedRun:
    """A run launched from the UI, as its run page showed it ended."""

    run_id: str
    status: str
    #: From the click on the launch button until the run page shows the final status.
    click_to_end_s: float


def materialize_all_latest(page: Page, ui_url: str, timeout_ms: float) -> LaunchedRun:
    """On the asset graph: "Materialize all", the latest partition, launch; wait for the end.

    Exactly what a user clicks, with no run config, so the run uses whatever executor the
    code location chose. Whatever partition dialog appears (daily, or the write-time
    windows the batch side may move to), the user picks its latest partition and clicks
    its launch button; with no dialog at all, "Materialize all" launches by itself.
    """
    page.goto(f"{ui_url}/asset-groups", wait_until="domcontentloaded")
    materialize = page.get_by_role("button", name=re.compile(r"Materialize all"))
    expect(materialize).to_be_enabled()
    # While the button still loads what it will launch (a spinner in it), a click does
    # nothing; a user waits for the spinner to go.
    expect(materialize.get_by_role("progressbar")).to_have_count(0, timeout=timeout_ms)
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("button", name=LAUNCH_BUTTON))
    launched = page.get_by_text("Launched run")
    clicked = time.monotonic()
    materialize.click()
    expect(dialog.or_(launched).first).to_be_visible()
    if dialog.is_visible():
        # The dialog lists its partitions once they load; "Latest" appears with them.
        dialog.get_by_role("button", name="Latest", exact=True).click()
        expect(dialog).to_contain_text(re.compile(r"(?<!\d)1 partition(?!s)"))
        launch = dialog.get_by_role("button", name=LAUNCH_BUTTON)
        expect(launch).to_be_enabled()
        clicked = time.monotonic()
        launch.click()
    launched.wait_for()
    page.get_by_role("link", name="View").or_(page.get_by_role("button", name="View")).first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+"))
    run_id = page.url.rsplit("/runs/", 1)[1].split("?")[0].split("/")[0]
    status = page.get_by_text(FINAL_STATUS).first
    status.wait_for(timeout=timeout_ms)
    ended = time.monotonic()
    return LaunchedRun(run_id, status.inner_text(), ended - clicked)


_RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      creationTime
      startTime
      endTime
      tags { key value }
      stepStats { stepKey startTime endTime }
      eventConnection { events { __typename ... on MessageEvent { message } } }
    }
  }
}
"""


def run_record(ui_url: str, run_id: str) -> dict[str, Any]:
    """The run as Dagster's GraphQL API reports it: status, times, tags, steps and log messages."""
    request = urllib.request.Request(
        f"{ui_url}/graphql",
        data=json.dumps({"query": _RUN_QUERY, "variables": {"runId": run_id}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        run: dict[str, Any] = json.load(response)["data"]["runOrError"]
    if run["__typename"] != "Run":
        raise LookupError(f"no run {run_id}: {run}")
    run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
    run["messages"] = [e["message"] for e in run.pop("eventConnection")["events"] if "message" in e]
    return run
