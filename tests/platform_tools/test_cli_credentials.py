"""Which credentials each command uses: the local cloud's on a loopback endpoint when the
shell names none, and the caller's own everywhere else, decided in one place for the CLI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import duckdb
import pytest

from cloudformation.naming import Naming
from local_cloud import defaults
from platform_tools.cli import _use_local_credentials_on_loopback, build_parser
from platform_tools.demo import SEED_PAYLOADS
from tests.platform_tools.cli_process import clean_environ, run_cli, start_up

LOCAL = "http://127.0.0.1:4566"
REAL = "https://dynamodb.ap-southeast-2.amazonaws.com"
NO_VARIABLES: dict[str, str] = {}


@pytest.mark.parametrize(
    ("argv", "environ", "local_credentials"),
    [
        pytest.param(
            ["materialize", "--partition", "2023-11-16"], NO_VARIABLES, True, id="materialize"
        ),
        pytest.param(["query", "latest"], NO_VARIABLES, True, id="query"),
        pytest.param(
            ["publish", "--via-iot-data", "--payload", "x"], NO_VARIABLES, True, id="iot-data"
        ),
        pytest.param(
            ["query", "latest", "--endpoint-url", "http://localhost:4566"],
            NO_VARIABLES,
            True,
            id="localhost",
        ),
        pytest.param(
            ["materialize"], {"AWS_ENDPOINT_URL": LOCAL}, True, id="materialize, endpoint set"
        ),
        pytest.param(
            ["stack", "deploy"], {"AWS_ENDPOINT_URL": LOCAL}, True, id="deploy to the local cloud"
        ),
        pytest.param(["stack", "deploy"], NO_VARIABLES, False, id="deploy to AWS"),
        pytest.param(
            ["query", "latest", "--endpoint-url", REAL], NO_VARIABLES, False, id="real endpoint"
        ),
        pytest.param(["materialize"], {"PLATFORM_ENV": "aws"}, False, id="aws environment"),
        pytest.param(
            ["materialize"], {"AWS_PROFILE": "mine"}, False, id="the shell names a profile"
        ),
        pytest.param(
            ["materialize"], {"AWS_ACCESS_KEY_ID": "AKIAMINE"}, False, id="the shell has keys"
        ),
    ],
)
def test_local_credentials_only_on_loopback_and_only_when_the_shell_has_none(
    argv: list[str],
    environ: dict[str, str],
    local_credentials: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a shell with no AWS variables but those shown
    WHEN the CLI prepares a command
    THEN it sets the local cloud's credentials exactly when the command reaches a loopback
    endpoint and the shell named no credentials of its own."""
    for name in (*defaults.CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_PROFILE", "PLATFORM_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(argv)

    _use_local_credentials_on_loopback(args)

    local = defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"]
    expected = local if local_credentials else environ.get("AWS_ACCESS_KEY_ID")
    assert os.environ.get("AWS_ACCESS_KEY_ID") == expected


@pytest.fixture(scope="module")
def local_cloud_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`pipeline-platform up` on free ports, as another terminal runs it; yields its endpoint."""
    up, aws_port, _ = start_up(tmp_path_factory.mktemp("up"))
    try:
        up.wait_for_line("ready:", 120)
        yield defaults.endpoint_url(aws_port)
    finally:
        up.kill()


@pytest.mark.integration
def test_readme_commands_work_in_a_fresh_shell_with_no_aws_variables(
    local_cloud_up: str, tmp_path: Path
) -> None:
    """GIVEN `pipeline-platform up` running, and a second shell with no AWS credentials
    WHEN the seed's reading is published through the IoT Data API and then
    `pipeline-platform materialize` runs (the README's lines; the
    endpoint set only because this local cloud listens on a free port)
    THEN both succeed, and the reading reaches the warehouse."""
    shell = clean_environ(AWS_ENDPOINT_URL=local_cloud_up)
    warehouse = tmp_path / "warehouse.duckdb"
    reading = dict(SEED_PAYLOADS)["normal"].decode()

    published = run_cli(
        "publish", "--via-iot-data", "--topic", "iot/sensors", "--payload", reading, env=shell
    )
    assert published.returncode == 0, published.stderr
    _wait_until_stored(local_cloud_up, device_id=json.loads(reading)["device_id"])

    materialized = run_cli(
        "materialize",
        env={**shell, "WAREHOUSE_PATH": str(warehouse), "DAGSTER_HOME": str(tmp_path)},
        timeout=600,
    )

    assert materialized.returncode == 0, materialized.stderr[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stored = con.execute(
            "select temperature, humidity from raw.sensor_readings where device_id = 'sensor-101'"
        ).fetchall()
    assert stored == [(22.0, 55.0)]


def _wait_until_stored(endpoint: str, device_id: str, timeout: float = 60.0) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=defaults.REGION,
        aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    table = Naming("dev", defaults.REGION).table
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = client.query(
            TableName=table,
            KeyConditionExpression="device_id = :d",
            ExpressionAttributeValues={":d": {"S": device_id}},
        )["Items"]
        if items:
            return
        time.sleep(0.3)
    raise AssertionError(f"{device_id} not stored within {timeout:g} s")


@pytest.mark.parametrize(
    ("window", "said"),
    [
        (["--partition", "2023-11-16"], "'2023-11-16' is not a write window"),
        (
            ["--partition", "2026-11-02-10:00", "--to", "2026-11-02-09:00"],
            "the range ends (2026-11-02-09:00) before it starts (2026-11-02-10:00)",
        ),
    ],
)
def test_materialize_rejects_a_window_that_is_not_one_in_one_line(
    window: list[str], said: str, tmp_path: Path
) -> None:
    """GIVEN a reading day where a write window is expected (the old partitions), or a
    range that ends before it starts
    WHEN `pipeline-platform materialize` is given it
    THEN it exits 2 at once with one line saying what is wrong and what a window looks
    like, and no traceback."""
    done = run_cli("materialize", *window, env=clean_environ(DAGSTER_HOME=str(tmp_path)))

    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
