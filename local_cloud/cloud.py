"""The embedded local cloud: every service of the streaming path, on loopback, in two processes.

`LocalCloud.start()` starts the AWS side in a process of its own (`local_cloud.service`):
the emulator with its state restored from the state dir, the project's CloudFormation
stacks deployed into it (the same templates as production, with the resources the
emulator skips created from those templates), the IoT rules engine, the Lambda event
source mapping runner (every mapping the stacks declare: the readings stream's, the alert
state table's stream's) and the Glue crawler runner; the runner runs the functions in
worker processes of their own, as Lambda runs them in sandboxes. The MQTT broker runs in
this process and hands every message to the rules engine there. Each process has its
own interpreter lock: the broker's work, the emulator's and the function's no longer
take turns on one core.

Its surface is small: start, stop, the endpoints, `wait_until_drained` and `rule_stats`.
State persists across restarts (see `local_cloud.persistence`); `fresh=True` starts empty,
and `persist=False` neither restores nor saves it (a run that throws its state away, as the
demo does, saves the snapshots' work: about 2 s of the stop, and their writing meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import boto3

from cloudformation.deploy import deploy
from cloudformation.naming import ANALYTICS_STACK, DEFAULT_ENV, STREAMING_STACK, Naming
from local_cloud import defaults
from local_cloud.iot_rules import InboundMessage
from local_cloud.persistence import DEFAULT_INTERVAL_S
from local_cloud.ports import PortInUse, require_free
from local_cloud.skipped_resources import create_skipped_resources

log = logging.getLogger(__name__)


# The analytics stack's parameters that describe a real network and warehouse;
# locally they only need to be well-formed (the warehouse is DuckDB).
LOCAL_ANALYTICS_PARAMETERS = {
    "DeployWarehouse": "false",
    "SubnetIds": "subnet-00000000000000001,subnet-00000000000000002",
    "SecurityGroupIds": "sg-00000000000000001",
}


#: The stacks the local cloud deploys. The orchestration stack (Dagster on ECS) is not one
#: of them: on a laptop Dagster runs on the laptop (`make ui`, `materialize`).
LOCAL_STACKS = (STREAMING_STACK, ANALYTICS_STACK)


def deploy_stacks(
    naming: Naming, parameters: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Deploy the local stacks into the emulator (`AWS_ENDPOINT_URL`) as `deploy` does against
    AWS, then create from the templates what the emulator skips; return outputs by stack
    purpose. `parameters` holds template parameter values by stack purpose.
    """
    session = boto3.Session(region_name=naming.region)
    moto_log = logging.getLogger("moto")
    level = moto_log.level
    with warnings.catch_warnings():
        # moto warns for every resource type it skips (while deploying, and again when
        # asked for the stack's resources); skipped_resources creates them.
        warnings.simplefilter("ignore")
        moto_log.setLevel(logging.ERROR)
        try:
            given = parameters or {}
            outputs = deploy(
                naming,
                stacks=LOCAL_STACKS,
                parameters={
                    **given,
                    ANALYTICS_STACK: {
                        **LOCAL_ANALYTICS_PARAMETERS,
                        **given.get(ANALYTICS_STACK, {}),
                    },
                },
                session=session,
                poll_seconds=0.1,
            )
            for purpose in outputs:
                create_skipped_resources(session, naming.stack(purpose))
        finally:
            moto_log.setLevel(level)
    return outputs


# Process environment the local cloud sets while it runs, restored when it stops.
_ENVIRON_KEYS = (*defaults.CREDENTIALS, "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
#: How long the AWS side may take to start (deploying both stacks on a busy machine).
_START_TIMEOUT_S = 180.0
#: How long the AWS side may take to stop (finish queued work, write the last snapshot).
_STOP_TIMEOUT_S = 60.0
#: The broker's messages go to the rules engine in batches of at most this many.
_FORWARD_BATCH = 500
LOCK_FILE = "local-cloud.lock"


class LocalCloudError(RuntimeError):
    """The AWS side could not start or answer; the message says why."""


class StateDirInUse(LocalCloudError):
    """Another local cloud runs on the same state dir (its state would be overwritten)."""


@dataclass(frozen=True)
class Endpoints:
    """Where the running local cloud listens, and what it deployed."""

    aws: str
    mqtt_host: str
    mqtt_port: int
    region: str
    warehouse: Path
    #: The functions' logs (what Lambda sends to CloudWatch Logs): `<function name>.log`.
    function_logs: Path
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Where the local cloud keeps its state between runs.
    state_dir: Path = defaults.STATE_DIR
    #: Whether the state saved by the last run was restored.
    restored: bool = False

    def output(self, stack: str, key: str) -> str:
        """A deployed stack's output value, e.g. `output("streaming", "TableName")`."""
        return self.outputs[stack][key]


class _StateDirLock:
    """An exclusive lock on the state dir, held while a local cloud runs on it."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._file: Any = None

    def acquire(self) -> None:
        import fcntl

        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise StateDirInUse(
                f"the state dir {self.path.parent} is in use by another local cloud "
                f"(pid {holder}); stop it, or pass another --state-dir"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None


class _Forwarder:
    """Carries the broker's messages to the AWS side in batches, in order, off the broker's
    event loop (which must never wait on a socket)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._queue: queue.SimpleQueue[InboundMessage | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self.submitted = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="mqtt-forwarder", daemon=True)
        self._thread.start()

    def submit(self, message: InboundMessage) -> None:
        """Queue one message (called on the broker's loop; never blocks)."""
        with self._cond:
            self.submitted += 1
        self._queue.put(message)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _FORWARD_BATCH:
                try:
                    message = self._queue.get_nowait()
                except queue.Empty:
                    break
                if message is None:
                    stop = True
                    break
                batch.append(message)
            try:
                self._connection.send(
                    [(m.topic, m.payload, m.client_id, m.received_ms) for m in batch]
                )
            except OSError:
                log.error("the AWS side is gone; %d MQTT messages not delivered", len(batch))
            with self._cond:
                self.sent += len(batch)
                self._cond.notify_all()
            if stop:
                return

    def flush(self, timeout: float) -> int:
        """Wait until every message submitted so far is sent; return how many were sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self.submitted
            while self.sent < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{target - self.sent} MQTT messages not forwarded")
                self._cond.wait(remaining)
            return self.sent

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(10)


class LocalCloud:
    """Starts and stops the local cloud; use as a context manager or call start/stop."""

    def __init__(
        self,
        *,
        state_dir: Path | str = defaults.STATE_DIR,
        aws_port: int = defaults.AWS_PORT,
        mqtt_port: int = defaults.MQTT_PORT,
        host: str = defaults.HOST,
        env: str = DEFAULT_ENV,
        region: str = defaults.REGION,
        fresh: bool = False,
        snapshot_interval: float = DEFAULT_INTERVAL_S,
        persist: bool = True,
        stack_parameters: Mapping[str, Mapping[str, str]] | None = None,
        schedule_every: float | None = None,
    ) -> None:
        """`stack_parameters` sets template parameters by stack purpose for a fresh deploy
        (e.g. `{"streaming": {"SilenceWindowSeconds": "10"}}`); `schedule_every` fires the
        scheduled rules that often instead of at their rate (tests and the demo)."""
        self.state_dir = Path(state_dir)
        self.function_logs = self.state_dir / "logs"
        self.naming = Naming(env, region)
        self.host = host
        self.aws_port = aws_port
        self.mqtt_port = mqtt_port
        self.fresh = fresh
        self.snapshot_interval = snapshot_interval
        self.persist = persist
        self.stack_parameters = {k: dict(v) for k, v in (stack_parameters or {}).items()}
        self.schedule_every = schedule_every
        self.endpoints: Endpoints | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._control: Connection | None = None
        self._control_lock = threading.Lock()
        self._forwarder: _Forwarder | None = None
        self._broker: Any = None
        self._lock = _StateDirLock(self.state_dir)
        self._saved_environ: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        """The emulator's endpoint."""
        return defaults.endpoint_url(self.aws_port, self.host)

    def start(self, log_progress: Any = log.info) -> Endpoints:
        """Bring every service up (the saved state restored), and return the endpoints.

        Raises `PortInUse` when a port is taken and `StateDirInUse` when another local
        cloud runs on the state dir, before anything starts.
        """
        from local_cloud.mqtt_broker import MqttBroker

        require_free(
            {"the AWS emulator": self.aws_port, "the MQTT broker": self.mqtt_port}, self.host
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        if self.fresh:
            self._empty_state_dir()
        self._saved_environ = {k: os.environ.get(k) for k in _ENVIRON_KEYS}
        # Code in this process (the pipeline, boto3 made by libraries) reaches the
        # emulator through the standard variables.
        os.environ.update(defaults.CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = self.naming.region
        try:
            ready = self._start_service(log_progress)
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
            log_progress(f"starting the MQTT broker on {self.host}:{self.mqtt_port}")
            assert self._forwarder is not None
            self._broker = MqttBroker(
                self._forwarder.submit, host=self.host, port=self.mqtt_port
            ).start()
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(
            aws=self.endpoint_url,
            mqtt_host=self.host,
            mqtt_port=self.mqtt_port,
            region=self.naming.region,
            warehouse=self.state_dir / "warehouse.duckdb",
            function_logs=self.function_logs,
            outputs=ready["outputs"],
            state_dir=self.state_dir,
            restored=ready["restored"],
        )
        return self.endpoints

    def _empty_state_dir(self) -> None:
        """Everything a previous run kept (emulator state, checkpoints, warehouse, Dagster
        instance, function logs) goes; the lock this cloud holds stays."""
        for entry in self.state_dir.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _start_service(self, log_progress: Any) -> dict[str, Any]:
        control, control_child = socket.socketpair()
        messages, messages_child = socket.socketpair()
        command = [
            sys.executable,
            "-m",
            "local_cloud.service",
            "--state-dir",
            str(self.state_dir),
            "--host",
            self.host,
            "--aws-port",
            str(self.aws_port),
            "--env",
            self.naming.env,
            "--region",
            self.naming.region,
            "--snapshot-interval",
            str(self.snapshot_interval),
            *([] if self.persist else ["--no-persist"]),
            "--stack-parameters",
            json.dumps(self.stack_parameters),
            *(
                []
                if self.schedule_every is None
                else ["--schedule-every", str(self.schedule_every)]
            ),
            "--control-fd",
            str(control_child.fileno()),
            "--messages-fd",
            str(messages_child.fileno()),
        ]
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(control_child.fileno(), messages_child.fileno())
            )
        finally:
            control_child.close()
            messages_child.close()
        self._control = Connection(control.detach())
        self._forwarder = _Forwarder(Connection(messages.detach()))
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            message = self._receive(deadline, "start")
            kind = message[0]
            if kind == "progress":
                log_progress(message[1])
            elif kind == "ready":
                return dict(message[1])
            elif kind == "port_in_use":
                raise PortInUse(message[1], message[2], self.host)
            elif kind == "error":
                raise LocalCloudError(f"the AWS side failed to start: {message[1]}: {message[2]}")
            else:
                raise LocalCloudError(f"unexpected answer from the AWS side: {message!r}")

    def _receive(self, deadline: float, what: str) -> Any:
        """The next message from the AWS side; fails if it exits or takes past `deadline`."""
        assert self._control is not None and self._process is not None
        while not self._control.poll(0.2):
            if self._process.poll() is not None and not self._control.poll(0):
                raise LocalCloudError(
                    f"the AWS side exited with code {self._process.returncode} during {what}"
                )
            if time.monotonic() > deadline:
                raise LocalCloudError(f"the AWS side did not answer {what} in time")
        try:
            return self._control.recv()
        except EOFError:
            raise LocalCloudError(f"the AWS side closed its connection during {what}") from None

    def _request(self, *request: Any, timeout: float) -> Any:
        if self._control is None:
            raise LocalCloudError("the local cloud is not running")
        with self._control_lock:
            self._control.send(request)
            answer = self._receive(time.monotonic() + timeout + 30, request[0])
        if answer[0] == "ok":
            return answer[1]
        if answer[1] == "TimeoutError":
            raise TimeoutError(answer[2])
        raise LocalCloudError(f"{request[0]} failed on the AWS side: {answer[1]}: {answer[2]}")

    def wait_until_drained(self, timeout: float = 60.0) -> None:
        """Block until every message published so far is through the rules and the function."""
        if self._forwarder is None:
            return
        sent = self._forwarder.flush(timeout)
        self._request("drain", sent, timeout, timeout=timeout)

    def rule_stats(self) -> Counter[str]:
        """The rules engine's counters: received, matched, delivered, failed, error_actions..."""
        return Counter(self._request("stats", timeout=30)["rules"])

    def event_stats(self) -> Counter[str]:
        """The event delivery's counters: received, delivered, dead_lettered, dropped."""
        return Counter(self._request("stats", timeout=30)["events"])

    def persistence_stats(self) -> dict[str, float]:
        """Snapshots written so far, and the last one's seconds and bytes."""
        stats = self._request("stats", timeout=30)
        return {k: stats[k] for k in ("snapshots", "snapshot_seconds", "snapshot_bytes")}

    def stop(self) -> None:
        """Stop every service: the broker first, then the AWS side (which finishes what is
        queued and writes its last snapshot); safe to call twice."""
        if self._broker is not None:
            try:
                self._broker.stop()
            except Exception:
                log.exception("stopping the MQTT broker failed")
            self._broker = None
        if self._forwarder is not None:
            with contextlib.suppress(TimeoutError):
                self._forwarder.flush(10)
            self._forwarder.stop()
        if self._process is not None:
            self._stop_service()
        self._forwarder = None
        self._control = None
        self._process = None
        self.endpoints = None
        self._lock.release()
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = {}

    def _stop_service(self) -> None:
        process = self._process
        assert process is not None
        if process.poll() is None:
            if self.endpoints is None or self._control is None:
                # Still starting: it reads no request until ready, but stops on SIGTERM.
                process.terminate()
            else:
                try:
                    with self._control_lock:
                        self._control.send(("stop",))
                except OSError:
                    process.terminate()
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("the AWS side did not stop within %ss; killing it", _STOP_TIMEOUT_S)
                process.kill()
                process.wait(10)
        if self._control is not None:
            self._control.close()

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
