"""`ui`, `demo` and `simulate` as a user runs them: a taken port, Ctrl-C and SIGTERM.

Each command runs as a process of its own, in its own process group, so each test can
check what a user would: how it ends, what it says, and that nothing it started is
still running afterwards. The bounds on how long a command may take to stop are the
subprocess timeouts (a hung command fails the test), not speed targets.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud.iot_rules import InboundMessage
from local_cloud.mqtt_broker import MqttBroker
from local_cloud.ports import free_port
from tests.platform_tools.cli_process import CliProcess, run_cli

pytestmark = pytest.mark.integration

INTERRUPTED = 130
#: A stop must be over within seconds; generous for a shared two-core machine.
STOP_TIMEOUT_S = 30.0
#: Time for the local cloud or the demo to reach the phase a test interrupts.
PHASE_TIMEOUT_S = 180.0


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on (and never answers): what a user's other server does."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def broker() -> Iterator[tuple[MqttBroker, list[InboundMessage]]]:
    """A real MQTT broker on a free port, and every message it accepted."""
    received: list[InboundMessage] = []
    lock = threading.Lock()

    def accept(message: InboundMessage) -> None:
        with lock:
            received.append(message)

    running = MqttBroker(accept, port=free_port()).start()
    try:
        yield running, received
    finally:
        running.stop()


def test_ui_with_a_taken_port_fails_at_once_naming_it(taken_port: int, tmp_path: Path) -> None:
    """GIVEN a port another program listens on
    WHEN `pipeline-platform ui --port` asks for it
    THEN it exits 2 at once (as `up` does), before starting anything, and says which
    port is taken for what, who holds it, and which option picks another."""
    state = tmp_path / "state"

    result = run_cli(
        "ui",
        "--port",
        str(taken_port),
        "--aws-port",
        str(free_port()),
        "--mqtt-port",
        str(free_port()),
        "--state-dir",
        str(state),
        timeout=30,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr
    assert f"port {taken_port} for the Dagster UI is in use" in message
    assert "held by pid" in message
    assert "--port" in message
    assert "Traceback" not in message
    assert not state.exists(), "the local cloud started although a port was taken"


def test_ui_stops_on_sigterm_while_the_stacks_deploy(tmp_path: Path) -> None:
    """GIVEN `pipeline-platform ui` deploying the stacks into its emulator (start-up)
    WHEN it gets SIGTERM
    THEN it stops within seconds, exits 0 (a requested stop), and leaves nothing running."""
    ui = CliProcess.start(
        "ui",
        "--port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--mqtt-port",
        str(free_port()),
        "--state-dir",
        str(tmp_path),
    )
    try:
        ui.wait_for_line("deploying the streaming and analytics stacks", PHASE_TIMEOUT_S)

        code = ui.signal_and_wait(signal.SIGTERM, STOP_TIMEOUT_S)

        assert code == 0, ui.output()
        assert "SIGTERM received" in ui.output()
        assert ui.group_is_empty(), "a process of `ui` outlived it"
    finally:
        ui.kill()


@pytest.mark.parametrize(
    ("phase", "sig", "group"),
    [
        pytest.param("deploying the streaming", signal.SIGTERM, False, id="start-up, SIGTERM"),
        # Ctrl-C in a terminal signals the whole foreground group, dbt's process included.
        pytest.param("materialising the batch side", signal.SIGINT, True, id="batch, Ctrl-C"),
    ],
)
def test_demo_stops_within_seconds_in_any_phase(
    phase: str, sig: int, group: bool, tmp_path: Path
) -> None:
    """GIVEN `pipeline-platform demo` in a phase (deploying its stacks, or running the
    batch side through Dagster and dbt)
    WHEN it gets SIGTERM, or Ctrl-C
    THEN it stops its local cloud and exits 130 within seconds, with nothing left running."""
    # A small fleet reaches the batch phase sooner; the phases are the same.
    demo = CliProcess.start(
        "demo", "--devices", "5", "--readings", "300", "--state-dir", str(tmp_path)
    )
    try:
        demo.wait_for_line(phase, PHASE_TIMEOUT_S)

        code = demo.signal_and_wait(sig, STOP_TIMEOUT_S, group=group)

        assert code == INTERRUPTED, demo.output()
        assert "stopped:" in demo.output()
        assert demo.group_is_empty(), "a process of `demo` outlived it"
    finally:
        demo.kill()


def test_simulate_stops_on_sigterm_and_reports_what_it_published(
    broker: tuple[MqttBroker, list[InboundMessage]],
) -> None:
    """GIVEN `pipeline-platform simulate` publishing to a broker for a minute
    WHEN it gets SIGTERM a few seconds in
    THEN it stops at once, exits 130, and its summary says it was interrupted and counts
    exactly the messages the broker received, every one acknowledged."""
    running, received = broker
    simulate = CliProcess.start(
        "simulate", "--port", str(running.port), "--rate", "50", "--duration", "60", "--seed", "3"
    )
    try:
        while len(received) < 50 and simulate.process.poll() is None:
            time.sleep(0.1)

        code = simulate.signal_and_wait(signal.SIGTERM, STOP_TIMEOUT_S)

        assert code == INTERRUPTED, simulate.output()
        text = "\n".join(simulate.lines)
        summary = json.loads(text[text.index("{") : text.rindex("}") + 1])
        assert summary["interrupted"] is True
        assert 50 <= summary["published"] < 3000
        assert summary["acknowledged"] == summary["published"] == len(received)
        assert simulate.group_is_empty()
    finally:
        simulate.kill()


def test_simulate_against_a_port_that_is_no_broker_fails_fast(taken_port: int) -> None:
    """GIVEN a port where something listens that never speaks MQTT, and a closed port
    WHEN `pipeline-platform simulate --port` points at either
    THEN it exits 1 within seconds, naming the address and how to start a broker."""
    silent = run_cli("simulate", "--port", str(taken_port), "--duration", "2", timeout=30)
    closed = run_cli("simulate", "--port", str(free_port()), "--duration", "2", timeout=30)

    assert silent.returncode == 1, silent.stderr
    assert f"127.0.0.1:{taken_port} is not an MQTT broker" in silent.stderr
    assert closed.returncode == 1, closed.stderr
    assert "no MQTT broker answers at 127.0.0.1:" in closed.stderr
    for result in (silent, closed):
        assert "pipeline-platform up" in result.stderr
        assert "Traceback" not in result.stderr
