"""The orchestration key: Dagster's database and its secret, the tasks' and builds' logs, the
image repository and the image builds."""

from __future__ import annotations

from troposphere import Template
from troposphere.kms import Key

from cloudformation.kms import customer_key, logs_statement
from cloudformation.naming import Naming


def codebuild_log_group(naming: Naming) -> str:
    """The log group CodeBuild writes the image builds' logs to."""
    return f"/aws/codebuild/{naming.image_build}"


def add_orchestration_key(t: Template, naming: Naming) -> Key:
    """Add the rotating orchestration key (and its alias)."""
    return customer_key(
        t,
        "OrchestrationKey",
        alias=naming.name("kms", "dagster"),
        description=f"Encrypts the {naming.env} orchestrator: Dagster's database and its "
        "secret, the tasks' and image builds' logs, the image repository.",
        service_statements=[
            logs_statement("CloudWatchLogsEncryptsTheTaskLogs", naming.dagster_log_group),
            logs_statement("CloudWatchLogsEncryptsTheBuildLogs", codebuild_log_group(naming)),
        ],
    )
