"""The deployment's instance settings (the dagster.yaml the image carries) as Dagster reads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer
from dagster_postgres import DagsterPostgresStorage

from cloudformation.dagster_tasks import TaskEnvironment
from cloudformation.layout import COMPUTE_LOGS_PREFIX
from pipeline_platform.env_override import overridden
from platform_tools.dagster_instance import MAX_CONCURRENT_RUNS

#: What the orchestration stack sets in a task (the secret's values as ECS injects them).
TASK_ENVIRONMENT = {
    TaskEnvironment.PG_HOST: "rds-dev-apse2-dagster-01.abc.ap-southeast-2.rds.amazonaws.com",
    TaskEnvironment.PG_PORT: "5432",
    TaskEnvironment.PG_DB: "dagster",
    TaskEnvironment.PG_USERNAME: "dagster",
    TaskEnvironment.PG_PASSWORD: "from-the-managed-secret",
    TaskEnvironment.RUN_TASK_DEFINITION: "arn:aws:ecs:ap-southeast-2:123456789012:"
    "task-definition/ecstask-dev-apse2-run-01:3",
    TaskEnvironment.COMPUTE_LOG_BUCKET: "s3-dev-apse2-lake-01-123456789012",
    "AWS_DEFAULT_REGION": "ap-southeast-2",
}


@pytest.fixture(scope="module")
def image_settings(tmp_path_factory) -> str:
    """The folder of the dagster.yaml the Dockerfile writes, written the same way."""
    home = tmp_path_factory.mktemp("dagster_home")
    written = subprocess.run(
        [sys.executable, "-m", "platform_tools.dagster_instance", "aws"],
        capture_output=True,
        text=True,
        check=True,
    )
    (home / "dagster.yaml").write_text(written.stdout)
    return str(home)


def _class_of(section: dict) -> Any:
    return class_from_code_pointer(section["module"], section["class"])


def _processed(section: dict, config_type: object) -> Any:
    result = process_config(config_type, section)
    assert result.success, result.errors
    return result.value


def test_the_image_settings_pass_dagsters_schema_and_read_the_task_environment(image_settings):
    """GIVEN the image's dagster.yaml in a task's environment WHEN Dagster reads it THEN its
    instance schema accepts it (the run queue included), and PostgreSQL storage,
    EcsRunLauncher and the S3 compute log manager each accept their section, with every
    endpoint and secret taken from the environment."""
    with overridden(TASK_ENVIRONMENT):
        config, _ = dagster_instance_config(image_settings)
        storage = _processed(config["storage"]["postgres"], DagsterPostgresStorage.config_type())
        sections = {
            name: _processed(
                config[name]["config"],
                class_from_code_pointer(
                    config[name]["module"], config[name]["class"]
                ).config_type(),
            )
            for name in ("run_launcher", "compute_logs")
        }

    database = storage["postgres_db"]
    assert database["hostname"] == TASK_ENVIRONMENT[TaskEnvironment.PG_HOST]
    assert database["password"] == TASK_ENVIRONMENT[TaskEnvironment.PG_PASSWORD]
    assert database["port"] == 5432
    assert database["params"] == {"sslmode": "require"}
    launcher = sections["run_launcher"]
    assert launcher["task_definition"] == {"env": TaskEnvironment.RUN_TASK_DEFINITION}
    assert launcher["secrets_tag"] is None
    assert config["run_queue"]["max_concurrent_runs"] == MAX_CONCURRENT_RUNS == 1
    logs = sections["compute_logs"]
    assert logs["bucket"] == TASK_ENVIRONMENT[TaskEnvironment.COMPUTE_LOG_BUCKET]
    assert f"{logs['prefix']}/" == COMPUTE_LOGS_PREFIX
    assert config["run_monitoring"]["enabled"] is True
    assert config["telemetry"]["enabled"] is False


def test_the_image_settings_hold_no_endpoint_or_secret(image_settings):
    """GIVEN the image's dagster.yaml THEN it names where each value comes from, never a
    value: the same image serves every deployment and carries no password."""
    text = (Path(image_settings) / "dagster.yaml").read_text()
    for variable in (
        TaskEnvironment.PG_HOST,
        TaskEnvironment.PG_PASSWORD,
        TaskEnvironment.RUN_TASK_DEFINITION,
        TaskEnvironment.COMPUTE_LOG_BUCKET,
    ):
        assert TASK_ENVIRONMENT[variable] not in text
    for variable in TaskEnvironment:
        assert f"env: {variable}" in text
