"""`make ui`: the local cloud, a fleet publishing, and the Dagster UI over them, until stopped.

`run_ui()` checks its three ports first (a taken one fails the command at once,
naming it), then starts the embedded local cloud in this process, a simulated
fleet that keeps publishing over MQTT from a background thread, and `dagster dev`
as a child process in a process group of its own, pointed at the local cloud and
at a warehouse and Dagster instance under the state directory. Ctrl-C or SIGTERM,
at any moment (while the stacks deploy, or `dagster dev` loads, too), stops all of
it within seconds: the Dagster services first, then the fleet, then the cloud.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from local_cloud import defaults
from local_cloud.cloud import Endpoints, LocalCloud
from local_cloud.ports import require_free
from pipeline_platform.environment import (
    ENV_ENDPOINT_URL,
    ENV_PLATFORM_ENV,
    ENV_WAREHOUSE_PATH,
    PROJECT_ROOT,
    Environment,
)
from platform_tools import device_simulator
from platform_tools.dagster_home import dagster_home
from platform_tools.stopping import (
    TOOL_STOP_GRACE_SECONDS,
    StopRequested,
    stop_on_signals,
    terminate_descendants,
)

DEFAULT_UI_PORT = 3000
HOST = "127.0.0.1"
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
# The fleet publishes in short rounds so a stop request is honoured within one round.
_FLEET_ROUND_SECONDS = 2.0
# `dagster dev` loads the code location (dbt manifest included) before it serves.
_UI_START_TIMEOUT = 180.0
# `dagster dev` gives its webserver and daemon this long to stop, then we do not wait.
_STOP_GRACE_SECONDS = 8.0


class UiError(RuntimeError):
    """The UI could not start: a port is taken, or `dagster dev` exited or never answered."""


@dataclass
class Fleet:
    """A simulated fleet publishing over MQTT in a background thread until `stop()`."""

    host: str
    port: int
    devices: int
    rate: float
    published: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Fleet:
        """Begin publishing; returns self."""
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                summary = device_simulator.simulate(
                    devices=self.devices,
                    rate=self.rate,
                    duration=_FLEET_ROUND_SECONDS,
                    host=self.host,
                    port=self.port,
                    progress=False,
                    ack_timeout=5.0,
                    stop=self._stop,
                )
                self.published += summary.published
            except Exception as error:  # the broker restarting must not end the fleet
                self.errors.append(str(error))
                self._stop.wait(1.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the fleet to stop and wait for its current round to end (it ends at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def dagster_environment(endpoints: Endpoints, state_dir: Path) -> dict[str, str]:
    """The child's environment: this process's, plus the local cloud, warehouse and instance."""
    home = dagster_home(state_dir)
    return {
        **os.environ,
        ENV_PLATFORM_ENV: Environment.LOCAL.value,
        ENV_ENDPOINT_URL: endpoints.aws,
        "AWS_DEFAULT_REGION": endpoints.region,
        # dbt runs from the project directory, so the warehouse path must be absolute.
        ENV_WAREHOUSE_PATH: str(endpoints.warehouse.resolve()),
        "DAGSTER_HOME": str(home),
    }


def start_dagster(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`dagster dev` on loopback as the leader of a new process group (so it can be ended whole)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(WORKSPACE),
            "-h",
            HOST,
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
    )


def wait_for_ui(
    url: str, process: subprocess.Popen[bytes], timeout: float = _UI_START_TIMEOUT
) -> None:
    """Block until the webserver answers `/server_info`; fail if the child exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UiError(f"dagster dev exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise UiError(f"the Dagster UI did not answer at {url} within {timeout:.0f} s")


def stop_process_group(
    process: subprocess.Popen[bytes], grace: float = _STOP_GRACE_SECONDS
) -> None:
    """Ask `dagster dev` to shut down its services, then end whatever of its group remains.

    SIGINT goes to the leader only: it tells the webserver and daemon to stop
    through their shutdown pipes and waits for them. Anything still in the group
    after that (a run worker, a code server) gets SIGTERM, then SIGKILL.
    """
    pgid = process.pid  # the leader of a new session: its pid is the group id
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break  # the group is empty
        except PermissionError:
            break  # the group id was reused by someone else's processes
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5.0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to `dagster dev` and everything in its group, now (a stop cut short)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_ui(
    *,
    port: int = DEFAULT_UI_PORT,
    aws_port: int = defaults.AWS_PORT,
    mqtt_port: int = defaults.MQTT_PORT,
    state_dir: Path | str = defaults.STATE_DIR,
    devices: int = 20,
    rate: float = 20.0,
) -> int:
    """Run the local cloud, a publishing fleet and the Dagster UI until Ctrl-C or SIGTERM.

    Fails at once, before starting anything, when one of its ports is taken
    (`PortInUse`). Prints `ready: Dagster UI at <url>` once the UI answers. Returns 0
    after a requested stop, 1 when `dagster dev` ends on its own.
    """
    if devices < 1 or rate <= 0:
        raise UiError(f"a fleet needs a device and a positive rate, got {devices} and {rate}")
    require_free(
        {"the Dagster UI": port, "the AWS emulator": aws_port, "the MQTT broker": mqtt_port},
        HOST,
        hint={
            what: f"stop what holds it (another `pipeline-platform ui` or `up`?), or pass {option}"
            for what, option in (
                ("the Dagster UI", "--port"),
                ("the AWS emulator", "--aws-port"),
                ("the MQTT broker", "--mqtt-port"),
            )
        },
    )
    state = Path(state_dir)
    cloud = LocalCloud(state_dir=state, aws_port=aws_port, mqtt_port=mqtt_port)
    fleet: Fleet | None = None
    dagster: subprocess.Popen[bytes] | None = None

    def force() -> None:
        if dagster is not None:
            kill_process_group(dagster)
        terminate_descendants()  # the local cloud's AWS side stops on SIGTERM, state saved

    code = 0
    with stop_on_signals(grace=TOOL_STOP_GRACE_SECONDS, force=force) as signals:
        try:
            endpoints = cloud.start(log_progress=lambda m: print(f"... {m}", flush=True))
            print(f"... starting a fleet: {devices} devices, {rate:g} readings/s", flush=True)
            fleet = Fleet(endpoints.mqtt_host, endpoints.mqtt_port, devices, rate).start()
            print(f"... starting dagster dev on port {port}", flush=True)
            dagster = start_dagster(port, dagster_environment(endpoints, state))
            url = f"http://{HOST}:{port}"
            wait_for_ui(url, dagster)
            print(f"AWS endpoint  {endpoints.aws}")
            print(f"MQTT broker   {endpoints.mqtt_host}:{endpoints.mqtt_port}")
            print(f"Warehouse     {endpoints.warehouse.resolve()}")
            print(f"Function logs {endpoints.function_logs.resolve()}/<function name>.log")
            print(f"ready: Dagster UI at {url} (Ctrl-C to stop)", flush=True)
            dagster.wait()
            print(f"dagster dev exited with code {dagster.returncode}", flush=True)
            code = 1
        except StopRequested as interrupted:
            print(f"{interrupted} received", flush=True)
        finally:
            signals.stopping()
            print("stopping the Dagster UI, the fleet and the local cloud", flush=True)
            if dagster is not None:
                stop_process_group(dagster)
            if fleet is not None:
                fleet.stop()
                print(f"the fleet published {fleet.published} readings", flush=True)
            cloud.stop()
    return code
