"""`materialize` and `status` as a person runs them: processes of their own against
`pipeline-platform up`, read for their exit status and the lines they print.

The module's local cloud goes through the states someone on call meets: a healthy
stream and a run that worked, write windows left behind for hours, an alarm in
ALARM, a mapping switched off and then lagging, and a run whose dbt tests reject
what it loaded.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from cloudformation.naming import Naming
from local_cloud import defaults
from pipeline_platform.defs import keys
from pipeline_platform.defs.jobs import LAKE_TABLES
from pipeline_platform.defs.lake.state import LakeState, StateStore
from pipeline_platform.defs.partitions import floor_hour, hour_key
from platform_tools import device_simulator
from stream_processor import contract
from tests.platform_tools.cli_process import CLI, clean_environ, run_cli, start_up

pytestmark = pytest.mark.integration

NAMING = Naming("dev", defaults.REGION)
#: Every step of the batch job, as `materialize` names it.
STEPS = (
    "export",
    "lake quarantined_records",
    "lake rule_errors",
    "lake sensor_readings",
    "crawl",
    "warehouse raw.quarantined_records",
    "warehouse raw.rule_errors",
    "warehouse raw.sensor_readings",
    "dbt build",
)
READINGS: list[dict[str, str | int]] = [
    {"device_id": "sensor-501", "timestamp": 1700100000, "temperature": 22, "humidity": 55},
    {"device_id": "sensor-502", "timestamp": 1700100500, "temperature": 75, "humidity": 40},
    {"device_id": "sensor-503", "timestamp": 1700101000, "temperature": 21, "humidity": 10},
]


@dataclass
class Platform:
    """`pipeline-platform up` on free ports, and a shell (environment, folder) beside it."""

    endpoint: str
    mqtt_port: int
    env: dict[str, str]
    cwd: Path

    def client(self, service: str):
        """A boto3 client on the local cloud."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=defaults.REGION,
            aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        """Run `pipeline-platform ARGS` in this shell to its end."""
        return run_cli(*args, env=env or self.env, cwd=cwd or self.cwd, timeout=600)

    def wait_until_stored(self, device_id: str, timeout: float = 60.0) -> None:
        """Block until the table holds a reading of `device_id`."""
        dynamodb = self.client("dynamodb")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = dynamodb.query(
                TableName=NAMING.table,
                KeyConditionExpression="device_id = :d",
                ExpressionAttributeValues={":d": {"S": device_id}},
            )["Items"]
            if found:
                return
            time.sleep(0.3)
        raise AssertionError(f"{device_id} not stored within {timeout:g} s")

    def publish(self, reading: dict) -> None:
        """Publish one reading over MQTT, as a device does."""
        device_simulator.publish(defaults.TOPIC, json.dumps(reading).encode(), port=self.mqtt_port)

    def mapping_uuid(self) -> str:
        """The stream processor's event source mapping."""
        (mapping,) = self.client("lambda").list_event_source_mappings(FunctionName=NAMING.function)[
            "EventSourceMappings"
        ]
        return mapping["UUID"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """GIVEN `pipeline-platform up` in one terminal, and a second shell (no AWS variables
    but the endpoint, as this cloud listens on a free port) in a folder of its own."""
    up, aws_port, mqtt_port = start_up(tmp_path_factory.mktemp("up"))
    shell = tmp_path_factory.mktemp("shell")
    env = clean_environ(
        AWS_ENDPOINT_URL=defaults.endpoint_url(aws_port),
        WAREHOUSE_PATH=str(shell / "warehouse.duckdb"),
        DAGSTER_HOME=str(shell / "dagster"),
    )
    try:
        up.wait_for_line("ready:", 180)
        yield Platform(defaults.endpoint_url(aws_port), mqtt_port, env, shell)
    finally:
        up.kill()


@pytest.fixture(scope="module")
def first_run(platform: Platform) -> subprocess.CompletedProcess[str]:
    """GIVEN three readings published by MQTT and stored, and one plain `materialize`."""
    for reading in READINGS:
        platform.publish(reading)
    for reading in READINGS:
        platform.wait_until_stored(str(reading["device_id"]))
    time.sleep(1.2)  # a run takes writes up to a second before it starts
    return platform.run("materialize")


def _line(output: str, pattern: str) -> str:
    """The first line matching `pattern`; the test fails, showing the output, without one."""
    for line in output.splitlines():
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matches {pattern!r} in:\n{output}")


def test_materialize_prints_a_line_per_step_and_keeps_dagsters_log_in_a_file(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """WHEN `materialize` runs with its output piped
    THEN it exits 0 and prints, for every step, a line as it starts and one as it ends with
    its duration and what it moved, then the summary; Dagster's event log and dbt's
    output are not on the terminal but in the run's log file, which it names."""
    out = first_run.stdout
    assert first_run.returncode == 0, first_run.stderr[-3000:] + out[-3000:]
    for step in STEPS:
        _line(out, rf"^  start\s+{re.escape(step)}$")
        _line(out, rf"^  done\s+{re.escape(step)}\s+\d+\.\ds  \S")
    assert "a full export: 3 items" in _line(out, r"done\s+export ")
    assert "3 changes (3 new) on 1 reading day" in _line(out, r"done\s+lake sensor_readings")
    assert "3 rows" in _line(out, r"done\s+warehouse raw.sensor_readings")
    assert re.search(r"\d+ models built, (\d+) of \1 tests passed", _line(out, r"done\s+dbt"))
    assert "checks:" in _line(out, r"^  checks: \d+ passed")
    assert "DEBUG" not in out and "dbt=" not in out
    log = platform.cwd / _line(out, r"^  log: ").split("log: ", 1)[1]
    text = log.read_text()
    assert "STEP_SUCCESS" in text  # Dagster's event log
    assert "Completed successfully" in text  # dbt's own output


def test_status_says_nothing_needs_attention_after_a_run_that_worked(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN the healthy stream and the run that worked
    WHEN `status` runs, and `status --json`
    THEN it exits 0, and reads: the mapping enabled with its iterator age, the readings
    stored in the last hour, no write window left, the run's success, the warehouse's
    newest reading, no alarm; the JSON says the same for a script."""
    done = platform.run("status")

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert _line(out, r"^stream\s+mapping Enabled")
    assert "limit 60.0 s, the stack's IteratorAge alarm" in _line(out, r"iterator age")
    assert "3 readings stored in the last hour" in _line(out, r"^table\s+last reading stored")
    assert _line(out, r"^\s+write windows not processed: none$")
    assert _line(out, r"^last run\s+SUCCESS run [0-9a-f]{8} ")
    assert "3 rows in raw.sensor_readings" in _line(out, r"^warehouse\s+newest reading stored")
    assert _line(out, r"dbt: nothing queued")
    assert _line(out, r"^alarms\s+none in ALARM$")
    assert out.rstrip().endswith("OK: nothing needs attention")
    report = json.loads(platform.run("status", "--json").stdout)
    assert report["healthy"] is True and report["attention"] == []
    assert report["last_run"]["last"]["status"] == "SUCCESS"
    assert report["stream"]["max_lag_seconds"] == 60
    assert report["table"]["stored_last_hour"] == 3


def test_status_read_by_a_reader_that_stops_early_ends_without_a_traceback(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN the healthy platform
    WHEN `status` writes to a pipe whose reader has already gone (as `status | head -0`)
    THEN it ends as a program SIGPIPE ends (status 141), without a traceback."""
    process = subprocess.Popen(
        [CLI, "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=platform.env,
        cwd=platform.cwd,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes before status has written anything
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def _on_a_terminal(*args: str, env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run `pipeline-platform ARGS` with a terminal (a pseudo-terminal 160 columns wide) as
    its output; return its exit status and everything it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(
        [CLI, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=cwd
    )
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, shown.decode(errors="replace")


def test_on_a_terminal_materialize_shows_the_running_steps_progress(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN the lake built by the first run
    WHEN `materialize` runs on a terminal
    THEN the running step has a progress display (dbt's nodes counted as they finish)
    besides the step lines."""
    code, shown = _on_a_terminal(
        "materialize",
        env={**platform.env, "TERM": "xterm-256color"},
        cwd=platform.cwd,
        timeout=600,
    )

    assert code == 0, shown[-3000:]
    assert "\x1b[" in shown  # drawn for a terminal
    assert re.search(r"dbt build: building models and running tests.*\d+ nodes", shown)
    assert re.search(r"done\s+dbt build", shown)


def test_write_windows_left_for_more_than_two_hours_need_attention(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN a lake whose tables stopped five hours ago (their state says so)
    WHEN `status` runs
    THEN it lists the five write windows not processed since, and exits 1 because the
    oldest ended more than two hours ago."""
    account = platform.client("sts").get_caller_identity()["Account"]
    store = StateStore(platform.client("s3"), NAMING.lake_bucket(account), keys.STATE_PREFIX)
    stopped = datetime.now(UTC) - timedelta(hours=5)
    kept = {}
    for table in LAKE_TABLES:
        state, etag = store.load(table)
        kept[table] = state.to_json()
        state.covered = [(None, stopped)]
        store.save(state, etag)
    try:
        done = platform.run("status")
    finally:
        for table, original in kept.items():
            etag = store.load(table)[1]
            store.save(LakeState.from_json(original), etag)

    assert done.returncode == 1, done.stdout + done.stderr
    first = hour_key(floor_hour(stopped))
    assert f"write windows not processed: {first} .. " in done.stdout
    assert "(5 windows)" in _line(done.stdout, r"write windows not processed")
    attention = _line(done.stdout, r"write windows? not processed more than 2 h after ending")
    assert f"the oldest {first}" in attention


def test_an_alarm_in_alarm_needs_attention(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN the stack's iterator-age alarm gone into ALARM
    WHEN `status` runs THEN it names the alarm and why, and exits 1."""
    cloudwatch = platform.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms_for_metric(
        MetricName="IteratorAge",
        Namespace="AWS/Lambda",
        Dimensions=[{"Name": "FunctionName", "Value": NAMING.function}],
    )["MetricAlarms"]
    name = alarm["AlarmName"]
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="3 of 5 breached")
    try:
        done = platform.run("status")
    finally:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="recovered")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Stream processing is falling behind." in _line(done.stdout, rf"^alarms\s+{name} in")
    assert _line(done.stdout, rf"^  - alarm {name} is in ALARM$")


def test_a_switched_off_or_lagging_mapping_needs_attention(
    platform: Platform, first_run: subprocess.CompletedProcess[str]
) -> None:
    """GIVEN the event source mapping switched off while a device publishes
    WHEN `status` runs THEN it says the mapping is disabled and exits 1;
    GIVEN the mapping switched on again after three seconds, the reading stored
    WHEN `status --max-lag 2s` runs THEN the iterator age (at least those three seconds)
    is over the limit, and it exits 1."""
    lambda_ = platform.client("lambda")
    uuid = platform.mapping_uuid()
    lambda_.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        time.sleep(1.5)  # the local runner sees a mapping change within a second
        platform.publish({"device_id": "sensor-lag", "timestamp": int(time.time()), "humidity": 40})
        off = platform.run("status")
        time.sleep(3.0)
    finally:
        lambda_.update_event_source_mapping(UUID=uuid, Enabled=True)
    platform.wait_until_stored("sensor-lag")
    time.sleep(2.5)  # the runner puts IteratorAge once a second
    lagging = platform.run("status", "--max-lag", "2s")

    assert off.returncode == 1, off.stdout + off.stderr
    assert _line(off.stdout, r"^stream\s+mapping Disabled")
    assert _line(off.stdout, r"^  - the event source mapping is Disabled: readings wait in ")
    assert lagging.returncode == 1, lagging.stdout + lagging.stderr
    age = _line(lagging.stdout, r"^\s+iterator age \d")
    seconds = re.search(r"iterator age ([\d.]+) s", age)
    assert seconds is not None and float(seconds[1]) >= 3.0
    assert "(limit 2.0 s, --max-lag)" in age
    assert _line(lagging.stdout, r"^  - the stream processor is [\d.]+ s behind its stream")


def test_a_run_whose_dbt_tests_fail_says_where_and_status_reports_it(
    platform: Platform, first_run: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    """GIVEN a stored reading with an alert code the contract does not know, which dbt's
    tests reject once it reaches the warehouse
    WHEN `materialize --verbose` runs
    THEN the dbt step's line says FAILED with the failing test and dbt's error, Dagster's
    event log is shown too, and the command says where the full log is and exits 1;
    WHEN `status` runs THEN it reports the failed run, its step and check, and exits 1;
    and from a shell with no Dagster instance it tells from the warehouse's bookkeeping
    that dbt has loads no build has taken, and exits 1 too."""
    platform.client("dynamodb").put_item(
        TableName=NAMING.table,
        Item={
            contract.DEVICE_ID: {"S": "sensor-odd"},
            contract.TIMESTAMP: {"N": str(Decimal(1700100000))},
            contract.ALERTS: {"L": [{"S": "NOT_A_CODE"}]},
            contract.QUALITY_FLAGS: {"L": []},
            contract.TEMPERATURE: {"N": "20"},
            contract.HUMIDITY: {"N": "50"},
            contract.SEQUENCE_NUMBER: {"S": "49600000000000000000000001"},
            contract.INGESTED_AT: {"N": str(int(time.time()))},
            contract.EXPIRES_AT: {"N": str(int(time.time()) + 86400)},
        },
    )
    time.sleep(1.2)

    failed = platform.run("materialize", "--verbose")

    assert failed.returncode == 1, failed.stdout[-3000:]
    dbt = _line(failed.stdout, r"^  FAILED\s+dbt build\s+\d+\.\ds")
    assert "codes_in_stg_iot__sensor_readings_alerts" in dbt
    assert _line(failed.stdout, r"^\s+\d+ of \d+ FAIL 1 codes_in_stg_iot__sensor_readings_alerts")
    assert _line(failed.stdout, r" - ERROR - batch_etl - .* - dbt_models - STEP_FAILURE - ")
    said = failed.stderr.strip().splitlines()[-1]
    assert said.startswith("pipeline-platform materialize: the run failed in dbt build")
    log = platform.cwd / said.split("the full log is ", 1)[1]
    assert "STEP_FAILURE" in log.read_text()

    status = platform.run("status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert _line(status.stdout, r"^last run\s+FAILURE run [0-9a-f]{8} ")
    assert _line(status.stdout, r"failed step: dbt build: \d+ of \d+ FAIL 1 codes_in_")
    assert _line(status.stdout, r"^  - the last batch run \([0-9a-f]{8}\) ended FAILURE in dbt")

    elsewhere = {k: v for k, v in platform.env.items() if k != "DAGSTER_HOME"}
    blind = platform.run("status", env=elsewhere, cwd=tmp_path)
    assert blind.returncode == 1, blind.stdout + blind.stderr
    assert _line(blind.stdout, r"^last run\s+no Dagster instance to read")
    assert _line(blind.stdout, r"^  - dbt has loads to rebuild that no build has taken")
