"""The local cloud's AWS side, in a process of its own: `python -m local_cloud.service`.

`LocalCloud` starts this process and talks to it over two socket connections it
passes down: one carries the MQTT broker's messages to the rules engine (batched, one
way), the other requests and answers (`drain`, `stats`, `stop`). Everything that
reaches into moto's objects lives here, beside moto: the emulator, the persistence of
its state, the IoT rules engine (which puts Kinesis records through moto's backend),
the IoT Data publish hook and the Glue crawler runner (moto hands them its calls), and
the event source mapping runner (which reads the shard from moto's backend). The
function runs in worker processes of its own, started by the runner (its execution
environments, see `local_cloud.lambda_sandbox`). This process, the one holding the
broker and the function's each get an interpreter lock, so the local cloud uses both
cores of a 2-core machine.

Start-up: restore the saved state (`LocalCloud(fresh=True)` empties it first), serve,
deploy the stacks (or, with restored stacks, take their outputs), start the services,
then say `ready`.
Stop: on `stop`, SIGTERM, or the parent's end (its connection closes, as after
`kill -9`), stop taking work, finish what is queued, write a last snapshot and exit.
SIGINT is left to the parent: Ctrl-C in a terminal reaches both, and the parent
stops the broker first.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cloudformation.naming import STREAMING_STACK
from local_cloud import defaults
from local_cloud.persistence import (
    SNAPSHOT_FILE,
    ChangeTracker,
    Snapshotter,
    StateGuard,
    read,
    restore,
)
from local_cloud.ports import PortInUse

log = logging.getLogger(__name__)

_DEPLOYED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


class _Terminated(BaseException):
    """SIGTERM: stop cleanly."""


def _clients(endpoint: str, region: str) -> Callable[[str], Any]:
    """The emulator's boto3 clients by service name, each made once."""
    import boto3

    session = boto3.session.Session(region_name=region)
    made: dict[str, Any] = {}
    lock = threading.Lock()

    def client(service: str) -> Any:
        with lock:
            if service not in made:
                made[service] = session.client(service, endpoint_url=endpoint)
            return made[service]

    return client


def _deployed_outputs(naming: Any) -> dict[str, dict[str, str]] | None:
    """Outputs of every local stack when all are deployed already (restored state), else None."""
    import boto3
    from botocore.exceptions import ClientError

    from cloudformation.deploy import stack_outputs
    from local_cloud.cloud import LOCAL_STACKS

    cfn = boto3.Session(region_name=naming.region).client("cloudformation")
    outputs = {}
    for purpose in LOCAL_STACKS:
        try:
            stacks = cfn.describe_stacks(StackName=naming.stack(purpose))["Stacks"]
        except ClientError:
            return None
        if not stacks or stacks[0]["StackStatus"] not in _DEPLOYED:
            return None
        outputs[purpose] = stack_outputs(cfn, naming.stack(purpose))
    return outputs


def _deployed_mappings(naming: Any) -> set[str]:
    """The UUIDs of the event source mappings the local stacks declare (of a Kinesis
    stream or of a table's stream)."""
    import boto3

    from local_cloud.cloud import LOCAL_STACKS

    cfn = boto3.Session(region_name=naming.region).client("cloudformation")
    uuids = set()
    for purpose in LOCAL_STACKS:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=naming.stack(purpose))
        for page in pages:
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == "AWS::Lambda::EventSourceMapping":
                    uuids.add(resource["PhysicalResourceId"])
    return uuids


class CloudService:
    """The emulator and the services beside it; `run()` until told to stop."""

    def __init__(self, args: argparse.Namespace, control: Connection, messages: Connection):
        from cloudformation.naming import Naming

        self.args = args
        self.control = control
        self.messages = messages
        self.state_dir = Path(args.state_dir)
        self.naming = Naming(args.env, args.region)
        self.guard = StateGuard()
        self.received = 0
        self._received_cond = threading.Condition()
        self._started: list[Any] = []
        self.rules: Any = None
        self.esm: Any = None
        self.delivery: Any = None
        self.snapshotter: Snapshotter | None = None

    def progress(self, message: str) -> None:
        """Tell the parent how start-up goes (it prints it)."""
        self.control.send(("progress", message))

    # --- start ---------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Bring everything up; return what the parent needs (outputs, restored or not)."""
        from cloudformation.outputs import StreamingOutput
        from local_cloud.cloud import deploy_stacks
        from local_cloud.emulator import Emulator
        from local_cloud.esm_checkpoints import CheckpointStore
        from local_cloud.esm_runner import EventSourceMappingRunner
        from local_cloud.event_delivery import EventDelivery
        from local_cloud.glue_crawler import GlueCrawlerRunner
        from local_cloud.iot_data_hook import IotDataPublishHook
        from local_cloud.iot_rules import EmulatorTargets, RulesEngine
        from local_cloud.schedules import ScheduleRunner

        self.state_dir.mkdir(parents=True, exist_ok=True)
        snapshot_path = self.state_dir / SNAPSHOT_FILE
        esm_dir = self.state_dir / "esm"
        snapshot = None if self.args.no_persist else read(snapshot_path)
        if snapshot is not None:
            self.progress(
                f"restoring the state saved {time.ctime(snapshot.saved_at)} from {snapshot_path}"
            )
            restore(snapshot)
            store = CheckpointStore(esm_dir)
            store.replace_all(snapshot.checkpoints)
            store.close()

        os.environ.update(defaults.CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = self.naming.region
        emulator = Emulator(
            host=self.args.host,
            port=self.args.aws_port,
            wrap_app=lambda app: ChangeTracker(app, self.guard),
        )
        self.progress(f"starting the AWS emulator on {emulator.endpoint_url}")
        emulator.start()
        self._started.append(emulator)
        endpoint = emulator.endpoint_url
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        crawler = GlueCrawlerRunner(endpoint, self.naming.region, state_guard=self.guard)
        self._started.append(crawler.start())

        outputs = _deployed_outputs(self.naming) if snapshot is not None else None
        if outputs is None:
            self.progress("deploying the streaming and analytics stacks from their templates")
            outputs = deploy_stacks(self.naming, json.loads(self.args.stack_parameters))
        else:
            self.progress("the stacks are deployed already (restored)")

        # Only the rules and mappings this cloud deployed.
        own_rules = {
            o[StreamingOutput.TOPIC_RULE_NAME]
            for o in outputs.values()
            if StreamingOutput.TOPIC_RULE_NAME in o
        }
        account = outputs[STREAMING_STACK][StreamingOutput.STREAM_ARN].split(":")[4]
        targets = EmulatorTargets(endpoint, self.naming.region, account, state_guard=self.guard)
        self.rules = RulesEngine(
            endpoint,
            self.naming.region,
            account_id=account,
            targets=targets,
            rule_filter=own_rules.__contains__,
        ).start()
        self._started.append(self.rules)
        hook = IotDataPublishHook(self.rules.submit, region=self.naming.region)
        self._started.append(hook.start())
        # Every mapping the stacks declare: the readings stream's, the alert state table's.
        own_mappings = _deployed_mappings(self.naming)
        self.esm = EventSourceMappingRunner(
            endpoint,
            self.naming.region,
            state_dir=esm_dir,
            log_dir=self.state_dir / "logs",
            mapping_filter=lambda mapping: mapping.uuid in own_mappings,
            # Each function in a worker process of its own, as in Lambda: its work (and
            # its clients' half of every request) off this process's interpreter lock.
            function_processes=True,
        )
        self._started.append(self.esm.start())
        esm = self.esm
        # EventBridge's deliveries the emulator does not make: bus events to the alert
        # topic (and any rule's SNS or Lambda targets), and the scheduled rules.
        self.delivery = EventDelivery(
            _clients(endpoint, self.naming.region),
            lambda arn, event: esm.function(arn).invoke(event),
        )
        self._started.append(self.delivery.start())
        self._started.append(
            ScheduleRunner(
                _clients(endpoint, self.naming.region)("events"),
                self.delivery.submit,
                every=self.args.schedule_every,
            ).start()
        )

        def checkpoints() -> list[tuple[str, str, int]]:
            # The runner's store while it runs; the file itself after it stopped (the
            # last snapshot is taken then, with the final checkpoints).
            if esm.checkpoints is not None:
                return list(esm.checkpoints.all())
            store = CheckpointStore(esm_dir)
            try:
                return store.all()
            finally:
                store.close()

        if not self.args.no_persist:
            self.snapshotter = Snapshotter(
                snapshot_path,
                self.guard,
                checkpoints=checkpoints,
                interval=self.args.snapshot_interval,
                close_in_child=lambda: [s for s in (emulator.listening_socket,) if s is not None],
            ).start()
        return {
            "outputs": outputs,
            "restored": snapshot is not None,
            "snapshot_interval": self.args.snapshot_interval,
        }

    # --- serve ---------------------------------------------------------------------

    def receive_messages(self) -> None:
        """Hand every batch of broker messages to the rules engine, in order."""
        from local_cloud.iot_rules import InboundMessage

        while True:
            try:
                batch = self.messages.recv()
            except (EOFError, OSError):
                return
            for topic, payload, client_id, received_ms in batch:
                self.rules.submit(InboundMessage(topic, payload, client_id, received_ms))
            with self._received_cond:
                self.received += len(batch)
                self._received_cond.notify_all()

    def _wait_received(self, expected: int, deadline: float) -> None:
        with self._received_cond:
            while self.received < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{expected - self.received} MQTT messages not handed to the rules engine"
                    )
                self._received_cond.wait(remaining)

    def drain(self, expected: int, timeout: float) -> None:
        """Wait until `expected` broker messages arrived and everything is through the function."""
        deadline = time.monotonic() + timeout
        self._wait_received(expected, deadline)
        if not self.rules.flush(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"the rules engine did not finish its queue within {timeout}s")
        self.esm.wait_until_drained(max(0.1, deadline - time.monotonic()))
        self.delivery.wait_idle(max(0.1, deadline - time.monotonic()))

    def stats(self) -> dict[str, Any]:
        """The rules engine's and the event delivery's counters, and the persistence figures."""
        snap = self.snapshotter
        return {
            "rules": dict(self.rules.stats),
            "events": dict(self.delivery.stats),
            "snapshots": 0 if snap is None else snap.snapshots,
            "snapshot_seconds": 0.0 if snap is None else snap.last_seconds,
            "snapshot_bytes": 0 if snap is None else snap.last_bytes,
        }

    def serve(self) -> None:
        """Answer the parent's requests until `stop` or its end."""
        handlers: dict[str, Callable[..., Any]] = {"drain": self.drain, "stats": self.stats}
        while True:
            try:
                request = self.control.recv()
            except (EOFError, OSError):
                return  # the parent is gone: stop cleanly
            name, *arguments = request
            if name == "stop":
                return
            try:
                self.control.send(("ok", handlers[name](*arguments)))
            except Exception as exc:
                self.control.send(("error", type(exc).__name__, str(exc)))

    # --- stop ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop in the reverse order of starting; the last snapshot is written after the
        mappings stopped (their checkpoints are final) and before the emulator goes."""
        emulator = self._started[0] if self._started else None
        for service in reversed(self._started[1:]):
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        self._started = self._started[:1]
        if self.snapshotter is not None:
            try:
                self.snapshotter.stop()
            except Exception:
                log.exception("the last snapshot of the local cloud's state failed")
            self.snapshotter = None
        if emulator is not None:
            emulator.stop()
        self._started = []


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.service")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--host", default=defaults.HOST)
    parser.add_argument("--aws-port", type=int, default=defaults.AWS_PORT)
    parser.add_argument("--env", required=True)
    parser.add_argument("--region", default=defaults.REGION)
    parser.add_argument("--snapshot-interval", type=float, required=True)
    parser.add_argument("--no-persist", action="store_true")
    parser.add_argument("--stack-parameters", default="{}")
    parser.add_argument("--schedule-every", type=float, default=None)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--messages-fd", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the service until told to stop; 0 after a clean stop."""
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="local cloud: %(name)s: %(message)s")
    control = Connection(socket.socket(fileno=args.control_fd).detach())
    messages = Connection(socket.socket(fileno=args.messages_fd).detach())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the stop finish
        raise _Terminated()

    signal.signal(signal.SIGTERM, terminate)
    service = CloudService(args, control, messages)
    code = 0
    try:
        try:
            ready = service.start()
        except PortInUse as exc:
            control.send(("port_in_use", exc.port, exc.what))
            return 2
        except _Terminated:
            return 0
        except Exception as exc:
            control.send(("error", type(exc).__name__, f"{exc}\n{traceback.format_exc()}"))
            return 1
        receiver = threading.Thread(target=service.receive_messages, name="mqtt-in", daemon=True)
        receiver.start()
        control.send(("ready", ready))
        with contextlib.suppress(_Terminated):
            service.serve()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        service.stop()
        with contextlib.suppress(OSError):  # the parent may be gone
            control.send(("stopped",))
        # Everything is stopped and saved. The interpreter's last garbage collection over
        # moto's objects took about 1.5 s of every stop (2 cores); skipping it ends the
        # process as soon as the parent was told.
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
