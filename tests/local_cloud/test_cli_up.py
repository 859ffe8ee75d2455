"""`pipeline-platform up` as a user runs it: a separate process, driven by the CLI and boto3.

The local cloud is started with the installed console script on free ports, a seed payload
is published with `pipeline-platform publish`, the reading is read back over the AWS API
and with `pipeline-platform query`, the Glue crawler is run, and SIGTERM stops it all.
The tests in this module share one running `up` and run in file order; the last one stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from cloudformation.naming import Naming
from local_cloud import defaults
from local_cloud.ports import free_port
from platform_tools.demo import SEED_PAYLOADS
from stream_processor import contract

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("pipeline-platform"))
READY_TIMEOUT_S = 60.0
STORED_TIMEOUT_S = 30.0
CRAWL_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 15.0
#: The seed's normal reading, as its "Testing" section publishes it.
SEED_NORMAL = dict(SEED_PAYLOADS)["normal"].decode()
NAMES = Naming("dev", defaults.REGION)


def _clean_environ() -> dict[str, str]:
    """This process's environment without AWS settings: the CLI must find its own way."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@dataclass
class RunningUp:
    """A `pipeline-platform up` child process and everything it has printed so far."""

    process: subprocess.Popen[str]
    aws_port: int
    mqtt_port: int
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The emulator's endpoint the CLI printed it would serve."""
        return f"http://127.0.0.1:{self.aws_port}"

    def read_output(self) -> None:
        """Collect stdout until it closes (the pipe must be drained or the child blocks)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("ready:"):
                self.ready.set()

    def output(self) -> str:
        """Everything printed so far, for failure messages."""
        return "\n".join(self.lines[-60:])


def _cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_clean_environ(),
        check=False,
    )


def _aws(up: RunningUp, service: str):
    return boto3.client(
        service,
        endpoint_url=up.endpoint,
        region_name=defaults.REGION,
        aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=defaults.CREDENTIALS["AWS_SESSION_TOKEN"],
    )


@pytest.fixture(scope="module")
def up(tmp_path_factory) -> Iterator[RunningUp]:
    """`pipeline-platform up` on free ports, ready; killed at the end if a test left it up."""
    aws_port, mqtt_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            CLI,
            "up",
            "--aws-port",
            str(aws_port),
            "--mqtt-port",
            str(mqtt_port),
            "--state-dir",
            str(tmp_path_factory.mktemp("up-state")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_environ(),
        # Its own process group, so the last test can see whether anything it started
        # outlives it.
        start_new_session=True,
    )
    running = RunningUp(process, aws_port, mqtt_port)
    running.reader = threading.Thread(target=running.read_output, daemon=True)
    running.reader.start()
    try:
        if not running.ready.wait(READY_TIMEOUT_S):
            pytest.fail(f"no `ready:` line within {READY_TIMEOUT_S:g} s:\n{running.output()}")
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        running.reader.join(5)


def test_up_prints_the_endpoints_it_serves(up):
    """GIVEN `pipeline-platform up --aws-port P --mqtt-port Q`
    WHEN it is ready
    THEN it printed the endpoint and broker on those ports and the seed's table name."""
    text = up.output()
    assert f"AWS endpoint      {up.endpoint}" in text
    assert f"MQTT broker       127.0.0.1:{up.mqtt_port}" in text
    assert f"Table             {NAMES.table}" in text
    assert NAMES.table == "dynamodb-dev-apse2-iotdata-01"


def test_published_seed_reading_is_stored_and_queryable(up):
    """GIVEN the local cloud running under `up`
    WHEN the seed's normal reading is published with `pipeline-platform publish` over MQTT
    THEN the item appears in the table, and `pipeline-platform query device` prints it."""
    published = _cli("publish", "--port", str(up.mqtt_port), "--payload", SEED_NORMAL)
    assert published.returncode == 0, published.stderr
    assert "published" in published.stdout

    dynamodb = _aws(up, "dynamodb")
    key = {contract.DEVICE_ID: {"S": "sensor-101"}, contract.TIMESTAMP: {"N": "1700100000"}}
    deadline = time.monotonic() + STORED_TIMEOUT_S
    item = None
    while item is None and time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=NAMES.table, Key=key).get("Item")
        if item is None:
            time.sleep(0.2)
    assert item is not None, f"not stored within {STORED_TIMEOUT_S:g} s:\n{up.output()}"
    assert item[contract.TEMPERATURE] == {"N": "22"}
    assert item[contract.HUMIDITY] == {"N": "55"}
    assert item[contract.ALERTS] == {"L": []}

    queried = _cli("query", "device", "sensor-101", "--endpoint-url", up.endpoint)
    assert queried.returncode == 0, queried.stderr
    lines = queried.stdout.splitlines()
    assert lines[0].split() == [
        "time",
        contract.DEVICE_ID,
        contract.TIMESTAMP,
        contract.TEMPERATURE,
        contract.HUMIDITY,
        contract.ALERTS,
        contract.QUALITY_FLAGS,
    ]
    # No alerts and no flags: those two columns are blank.
    assert lines[2].split() == ["2023-11-16T02:00:00+00:00", "sensor-101", "1700100000", "22", "55"]
    assert lines[-1] == "(1 rows)"


def test_crawler_started_over_the_api_returns_to_ready(up):
    """GIVEN the local cloud running under `up`
    WHEN `start_crawler` is called on the seed's crawler, as `aws glue start-crawler` does
    THEN the crawler runs and returns to READY with a finished last crawl."""
    glue = _aws(up, "glue")
    assert NAMES.crawler == "crawler-dev-apse2-iot-01"
    glue.start_crawler(Name=NAMES.crawler)
    deadline = time.monotonic() + CRAWL_TIMEOUT_S
    crawler = glue.get_crawler(Name=NAMES.crawler)["Crawler"]
    while crawler["State"] != "READY" and time.monotonic() < deadline:
        time.sleep(0.2)
        crawler = glue.get_crawler(Name=NAMES.crawler)["Crawler"]
    assert crawler["State"] == "READY", crawler
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]


def test_sigterm_stops_cleanly_and_leaves_no_process_behind(up):
    """GIVEN the local cloud running under `up`
    WHEN it receives SIGTERM
    THEN it exits 0 within 15 s and nothing it started is still running."""
    up.process.send_signal(signal.SIGTERM)
    try:
        code = up.process.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_TIMEOUT_S:g} s after SIGTERM:\n{up.output()}")
    assert up.reader is not None
    up.reader.join(5)  # everything it printed before exiting
    assert code == 0, up.output()
    with pytest.raises(ProcessLookupError):
        os.killpg(up.process.pid, 0)  # no process is left in its process group
    assert "stopping the local cloud" in up.output()
