"""`pipeline-platform up` as a user runs it: a separate process, driven by the CLI and boto3.

The local cloud is started with the installed console script on free ports, a seed payload
is published with `pipeline-platform publish`, the reading is read back over the AWS API
and with `pipeline-platform query`, the Glue crawler is run, and SIGTERM stops it all.
Then it is started again on the same state dir (everything is still there), killed with
`kill -9` (only the last seconds may be lost), interrupted while starting, and started
`--fresh`. The tests in this module run in file order and share the state dir.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
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
from cloudformation.outputs import AnalyticsOutput, StreamingOutput
from local_cloud import defaults
from local_cloud.ports import free_port
from platform_tools.demo import SEED_PAYLOADS
from stream_processor import contract

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("pipeline-platform"))
READY_TIMEOUT_S = 120.0
STORED_TIMEOUT_S = 30.0
CRAWL_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 15.0
#: A port refused, or a signal during start-up: the process is gone within this.
FAIL_FAST_S = 10.0
#: What `kill -9` may lose: changes newer than one snapshot interval (2 s) plus the time a
#: snapshot takes to write (well under a second here).
PERSISTENCE_BOUND_S = 3.0
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
    state_dir: Path
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

    def kill(self) -> None:
        """SIGKILL to its whole process group (`kill -9`), if anything of it still runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if self.reader is not None:
            self.reader.join(5)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig`; return the exit code once it and everything it started are gone."""
        self.process.send_signal(sig)
        try:
            code = self.process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_TIMEOUT_S:g} s after {sig!r}:\n{self.output()}")
        if self.reader is not None:
            self.reader.join(5)  # everything it printed before exiting
        assert_group_gone(self.process.pid)
        return code


def assert_group_gone(pgid: int, within: float = 5.0) -> None:
    """Nothing of the process group `pgid` is left running."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"processes of group {pgid} still run after its leader exited")
        time.sleep(0.1)


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


def start_up(state_dir: Path, *extra: str, ready: bool = True) -> RunningUp:
    """`pipeline-platform up` on free ports in its own process group; ready unless told."""
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
            str(state_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_environ(),
        # Its own process group, so a test can see whether anything it started outlives it.
        start_new_session=True,
    )
    running = RunningUp(process, aws_port, mqtt_port, state_dir)
    running.reader = threading.Thread(target=running.read_output, daemon=True)
    running.reader.start()
    if ready and not running.ready.wait(READY_TIMEOUT_S):
        running.kill()
        pytest.fail(f"no `ready:` line within {READY_TIMEOUT_S:g} s:\n{running.output()}")
    return running


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    """The state dir every `up` of this module runs on, one after the other."""
    return tmp_path_factory.mktemp("up-state")


@pytest.fixture(scope="module")
def up(state_dir) -> Iterator[RunningUp]:
    """`pipeline-platform up` on free ports, ready; killed at the end if a test left it up."""
    running = start_up(state_dir)
    try:
        yield running
    finally:
        running.kill()


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


def test_a_second_up_on_the_same_ports_fails_fast_naming_the_port(up, tmp_path):
    """GIVEN `up` running on ports P and Q
    WHEN a second `up` is started on the same ports
    THEN it exits 2 within seconds, names port P and what to do, and the first one still serves."""
    started = time.monotonic()
    second = _cli(
        "up",
        "--aws-port",
        str(up.aws_port),
        "--mqtt-port",
        str(up.mqtt_port),
        "--state-dir",
        str(tmp_path),
        timeout=FAIL_FAST_S,
    )
    assert time.monotonic() - started < FAIL_FAST_S
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"port {up.aws_port} for the AWS emulator is in use" in second.stderr
    assert "--aws-port" in second.stderr
    assert up.process.poll() is None
    assert _aws(up, "dynamodb").describe_table(TableName=NAMES.table)["Table"]["ItemCount"] >= 0


def test_a_taken_mqtt_port_fails_fast_and_leaves_nothing_running(tmp_path):
    """GIVEN something listening on the MQTT port
    WHEN `up` is started with that port
    THEN it exits 2 within seconds naming the MQTT port, and nothing it started runs on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        process = subprocess.Popen(
            [
                CLI,
                "up",
                "--aws-port",
                str(free_port()),
                "--mqtt-port",
                str(port),
                "--state-dir",
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_clean_environ(),
            start_new_session=True,
        )
        _, stderr = process.communicate(timeout=FAIL_FAST_S)
    assert time.monotonic() - started < FAIL_FAST_S
    assert process.returncode == 2
    assert f"port {port} for the MQTT broker is in use" in stderr
    assert_group_gone(process.pid)


#: What the first `up` held when it stopped, to find again after the restart.
BEFORE: dict[str, object] = {}


def test_sigterm_stops_cleanly_and_leaves_no_process_behind(up):
    """GIVEN the local cloud running under `up`, holding a reading, a queued message, a
    lake object, a catalog table and stream records
    WHEN it receives SIGTERM
    THEN it exits 0 within 15 s and nothing it started is still running."""
    sqs, s3, glue, kinesis = (_aws(up, s) for s in ("sqs", "s3", "glue", "kinesis"))
    queue_url = _output(up, "streaming", StreamingOutput.ON_FAILURE_QUEUE_URL)
    sqs.send_message(QueueUrl=queue_url, MessageBody="kept across restarts")
    lake = _output(up, "analytics", AnalyticsOutput.LAKE_BUCKET_NAME)
    s3.put_object(Bucket=lake, Key="lake/kept.txt", Body=b"kept")
    glue.create_table(
        DatabaseName=NAMES.glue_database,
        TableInput={"Name": "kept_table", "StorageDescriptor": {"Columns": []}},
    )
    BEFORE["records"] = _stream_records(kinesis)
    BEFORE["log_lines"] = _wait_for_log_lines(up, 1)  # the seed reading's invocation
    BEFORE["stopped_at"] = time.time()
    assert BEFORE["records"], "the seed reading went through the stream"

    code = up.stop(signal.SIGTERM)
    assert code == 0, up.output()
    assert "stopping the local cloud" in up.output()


def _output(up: RunningUp, stack: str, key: str) -> str:
    """A deployed stack's output, as the running local cloud reports it."""
    cfn = _aws(up, "cloudformation")
    outputs = cfn.describe_stacks(StackName=NAMES.stack(stack))["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == key)


def _stream_records(kinesis) -> list[tuple[str, bytes]]:
    """(sequence number, data) of every record in the stream's shards, oldest first."""
    records = []
    for shard in kinesis.list_shards(StreamName=NAMES.stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=NAMES.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = kinesis.get_records(ShardIterator=iterator, Limit=10000)
        records += [(r["SequenceNumber"], r["Data"]) for r in response["Records"]]
    return records


def _function_log_lines(up: RunningUp) -> int:
    """Lines the function has logged (one JSON line per invocation, and its EMF)."""
    logs = Path(up.state_dir) / "logs"
    return sum(len(p.read_text().splitlines()) for p in logs.glob("*.log"))


def _wait_for_log_lines(up: RunningUp, lines: int, timeout: float = STORED_TIMEOUT_S) -> int:
    """The function's log lines once there are at least `lines` (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while (found := _function_log_lines(up)) < lines and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


@pytest.fixture(scope="module")
def restarted(state_dir) -> Iterator[RunningUp]:
    """`up` started again on the first one's state dir, after it stopped."""
    running = start_up(state_dir)
    try:
        yield running
    finally:
        running.kill()


def test_a_restarted_up_holds_what_it_held_when_it_stopped(restarted):
    """GIVEN `up` stopped with SIGTERM holding a reading, a queued message, a lake object, a
    catalog table and stream records
    WHEN `up` starts again on the same state dir
    THEN all of it is there, the stream's records keep their sequence numbers, and the
    mapping resumes where it stopped: nothing is delivered again, and a new reading is stored."""
    assert "restoring the state saved" in restarted.output()
    dynamodb, sqs, s3, glue, kinesis = (
        _aws(restarted, s) for s in ("dynamodb", "sqs", "s3", "glue", "kinesis")
    )
    key = {contract.DEVICE_ID: {"S": "sensor-101"}, contract.TIMESTAMP: {"N": "1700100000"}}
    assert dynamodb.get_item(TableName=NAMES.table, Key=key)["Item"][contract.TEMPERATURE] == {
        "N": "22"
    }
    queue_url = _output(restarted, "streaming", StreamingOutput.ON_FAILURE_QUEUE_URL)
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url).get("Messages", [])]
    assert bodies == ["kept across restarts"]
    lake = _output(restarted, "analytics", AnalyticsOutput.LAKE_BUCKET_NAME)
    kept = s3.get_object(Bucket=lake, Key="lake/kept.txt")["Body"].read()
    assert kept == b"kept"
    assert glue.get_table(DatabaseName=NAMES.glue_database, Name="kept_table")["Table"]
    assert _stream_records(kinesis) == BEFORE["records"]

    reading = '{"device_id": "sensor-201", "timestamp": 1700200000, "temperature": 23}'
    assert _cli("publish", "--port", str(restarted.mqtt_port), "--payload", reading).returncode == 0
    new_key = {contract.DEVICE_ID: {"S": "sensor-201"}, contract.TIMESTAMP: {"N": "1700200000"}}
    _wait_for_item(dynamodb, new_key)
    records = _stream_records(kinesis)
    assert records[: len(BEFORE["records"])] == BEFORE["records"]
    assert int(records[-1][0]) > int(BEFORE["records"][-1][0])
    # One invocation (one log line) for the one new record: no old one was delivered again.
    # The line is written once the invocation returns, which may be after its item shows.
    assert _wait_for_log_lines(restarted, BEFORE["log_lines"] + 1) - BEFORE["log_lines"] == 1


def test_an_export_after_a_restart_sees_writes_from_before_it(restarted):
    """GIVEN a reading written before `up` stopped and started again (the table's change
    journal is part of the saved state)
    WHEN the table is exported as of a moment before the restart (from the journal: the
    table's first 15 minutes are too short for an incremental window)
    THEN the export holds that reading."""
    dynamodb = _aws(restarted, "dynamodb")
    table_arn = dynamodb.describe_table(TableName=NAMES.table)["Table"]["TableArn"]
    started = dynamodb.export_table_to_point_in_time(
        TableArn=table_arn,
        S3Bucket=_output(restarted, "analytics", AnalyticsOutput.LAKE_BUCKET_NAME),
        S3Prefix="exports/after-restart",
        ExportFormat="DYNAMODB_JSON",
        ExportType="FULL_EXPORT",
        ExportTime=BEFORE["stopped_at"],
    )["ExportDescription"]
    deadline = time.monotonic() + STORED_TIMEOUT_S
    export = started
    while export["ExportStatus"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.2)
        export = dynamodb.describe_export(ExportArn=started["ExportArn"])["ExportDescription"]
    assert export["ExportStatus"] == "COMPLETED", export
    # The seed's reading, written before the restart; sensor-201 came after ExportTime.
    assert export["ItemCount"] == 1, export


def _wait_for_item(dynamodb, key: dict, timeout: float = STORED_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=NAMES.table, Key=key).get("Item")
        if item is not None:
            return item
        time.sleep(0.1)
    pytest.fail(f"{key} not stored within {timeout:g} s")


def test_kill_9_loses_at_most_the_last_seconds(restarted, state_dir):
    """GIVEN `up` running, and a reading stored
    WHEN the whole process group is killed with SIGKILL more than the persistence bound
    (3 s) after the reading was stored, and `up` starts again
    THEN the reading is there."""
    dynamodb = _aws(restarted, "dynamodb")
    reading = '{"device_id": "sensor-301", "timestamp": 1700300000, "temperature": 24}'
    assert _cli("publish", "--port", str(restarted.mqtt_port), "--payload", reading).returncode == 0
    key = {contract.DEVICE_ID: {"S": "sensor-301"}, contract.TIMESTAMP: {"N": "1700300000"}}
    _wait_for_item(dynamodb, key)
    time.sleep(PERSISTENCE_BOUND_S)
    restarted.kill()
    again = start_up(state_dir)
    try:
        assert _aws(again, "dynamodb").get_item(TableName=NAMES.table, Key=key).get("Item")
        assert again.stop(signal.SIGINT) == 0
    finally:
        again.kill()


def test_sigint_during_start_up_stops_within_seconds(tmp_path):
    """GIVEN `up` starting (its emulator up, its stacks being deployed)
    WHEN it receives SIGINT (Ctrl-C)
    THEN it exits within seconds and nothing it started is still running."""
    starting = start_up(tmp_path, ready=False)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any("deploying" in line for line in starting.lines):
            assert time.monotonic() < deadline, starting.output()
            assert starting.process.poll() is None, starting.output()
            time.sleep(0.05)
        started = time.monotonic()
        code = starting.stop(signal.SIGINT)
        assert time.monotonic() - started < FAIL_FAST_S
        assert code == 0, starting.output()
        assert not starting.ready.is_set()
    finally:
        starting.kill()


def test_a_second_ctrl_c_while_stopping_does_not_cut_the_clean_up_short(tmp_path):
    """GIVEN `up` ready
    WHEN an impatient user presses Ctrl-C twice in a row
    THEN it still stops the way one Ctrl-C does: exit 0, no traceback, nothing left running."""
    running = start_up(tmp_path)
    try:
        running.process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        running.process.send_signal(signal.SIGINT)
        code = running.process.wait(EXIT_TIMEOUT_S)
        if running.reader is not None:
            running.reader.join(5)  # everything it printed before exiting
        assert code == 0, running.output()
        assert "Traceback" not in running.output()
        assert_group_gone(running.process.pid)
    finally:
        running.kill()


def test_up_fresh_starts_empty(state_dir):
    """GIVEN a state dir holding a table with readings
    WHEN `up --fresh` starts on it
    THEN the table is empty."""
    fresh = start_up(state_dir, "--fresh")
    try:
        assert "restoring" not in fresh.output()
        table = _aws(fresh, "dynamodb").scan(TableName=NAMES.table, Select="COUNT")
        assert table["Count"] == 0
        assert fresh.stop(signal.SIGTERM) == 0
    finally:
        fresh.kill()
