"""The embedded local cloud: every service of the streaming path, in one process, on loopback.

`LocalCloud.start()` brings up the AWS emulator, deploys the project's
CloudFormation stacks into it (the same templates as production, with the
resources the emulator skips created from those templates), then starts the
services the emulator lacks: the MQTT broker, the IoT rules engine, the Lambda
event source mapping runner and the Glue crawler runner. Its surface is small:
start, stop and the endpoints.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from cloudformation.deploy import deploy
from cloudformation.naming import ANALYTICS_STACK, DEFAULT_ENV, STREAMING_STACK, Naming
from cloudformation.outputs import StreamingOutput
from local_cloud import defaults
from local_cloud.emulator import Emulator
from local_cloud.esm_runner import EventSourceMappingRunner
from local_cloud.glue_crawler import GlueCrawlerRunner
from local_cloud.iot_data_hook import IotDataPublishHook
from local_cloud.iot_rules import RulesEngine
from local_cloud.mqtt_broker import MqttBroker
from local_cloud.skipped_resources import create_skipped_resources

log = logging.getLogger(__name__)


# The analytics stack's parameters that describe a real network and warehouse;
# locally they only need to be well-formed (the warehouse is DuckDB).
LOCAL_ANALYTICS_PARAMETERS = {
    "DeployWarehouse": "false",
    "SubnetIds": "subnet-00000000000000001,subnet-00000000000000002",
    "SecurityGroupIds": "sg-00000000000000001",
}


def deploy_stacks(naming: Naming) -> dict[str, dict[str, str]]:
    """Deploy both stacks into the emulator (`AWS_ENDPOINT_URL`) as `deploy` does against AWS,
    then create from the templates what the emulator skips; return outputs by stack purpose.
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
            outputs = deploy(
                naming,
                parameters={ANALYTICS_STACK: LOCAL_ANALYTICS_PARAMETERS},
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

    def output(self, stack: str, key: str) -> str:
        """A deployed stack's output value, e.g. `output("streaming", "TableName")`."""
        return self.outputs[stack][key]


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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.function_logs = self.state_dir / "logs"
        self.naming = Naming(env, region)
        self.host = host
        self.emulator = Emulator(host=host, port=aws_port)
        self.mqtt_port = mqtt_port
        self.endpoints: Endpoints | None = None
        self.rules: RulesEngine | None = None
        self.esm: EventSourceMappingRunner | None = None
        self._started: list[Any] = []
        self._saved_environ: dict[str, str | None] = {}

    def start(self, log_progress: Any = log.info) -> Endpoints:
        """Bring every service up, deploy the stacks, and return the endpoints."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._saved_environ = {k: os.environ.get(k) for k in _ENVIRON_KEYS}
        # Code in this process (the deployed handler, the pipeline, boto3 made by
        # libraries) reaches the emulator through the standard variables.
        os.environ.update(defaults.CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = self.naming.region
        try:
            log_progress(f"starting the AWS emulator on {self.emulator.endpoint_url}")
            self.emulator.start()
            self._started.append(self.emulator)
            os.environ["AWS_ENDPOINT_URL"] = self.emulator.endpoint_url
            crawler = GlueCrawlerRunner(self.emulator.endpoint_url, self.naming.region)
            self._started.append(crawler.start())

            log_progress("deploying the streaming and analytics stacks from their templates")
            outputs = self._deploy()

            endpoint = self.emulator.endpoint_url
            # As with the mappings below: evaluate the rules this cloud deployed, so
            # two clouds in one process (tests) never route each other's traffic.
            own_rules = {
                o[StreamingOutput.TOPIC_RULE_NAME]
                for o in outputs.values()
                if StreamingOutput.TOPIC_RULE_NAME in o
            }
            self.rules = RulesEngine(
                endpoint, self.naming.region, rule_filter=own_rules.__contains__
            ).start()
            self._started.append(self.rules)
            log_progress(f"starting the MQTT broker on {self.host}:{self.mqtt_port}")
            broker = MqttBroker(self.rules.submit, host=self.host, port=self.mqtt_port)
            self._started.append(broker.start())
            hook = IotDataPublishHook(self.rules.submit, region=self.naming.region)
            self._started.append(hook.start())
            # The emulator's state is process-wide; act only on the mappings of the
            # stream this cloud deployed, so two clouds in one process (tests) never
            # run each other's functions.
            stream_arn = outputs[STREAMING_STACK][StreamingOutput.STREAM_ARN]
            self.esm = EventSourceMappingRunner(
                endpoint,
                self.naming.region,
                state_dir=self.state_dir / "esm",
                log_dir=self.function_logs,
                mapping_filter=lambda mapping: mapping.stream_arn == stream_arn,
            )
            self._started.append(self.esm.start())
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(
            aws=self.emulator.endpoint_url,
            mqtt_host=self.host,
            mqtt_port=self.mqtt_port,
            region=self.naming.region,
            warehouse=self.state_dir / "warehouse.duckdb",
            function_logs=self.function_logs,
            outputs=outputs,
        )
        return self.endpoints

    def _deploy(self) -> dict[str, dict[str, str]]:
        return deploy_stacks(self.naming)

    def wait_until_drained(self, timeout: float = 60.0) -> None:
        """Block until every message published so far is through the rules and the function."""
        if self.rules is not None:
            self.rules.flush(timeout)
        if self.esm is not None:
            self.esm.wait_until_drained(timeout)

    def stop(self) -> None:
        """Stop every service in the reverse order of starting; safe to call twice."""
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception:  # keep stopping the rest
                log.exception("stopping %s failed", type(service).__name__)
        self.rules = self.esm = None
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = {}

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
