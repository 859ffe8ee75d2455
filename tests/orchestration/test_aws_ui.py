"""`pipeline-platform aws-ui`: a deployment's UI through SSM port forwarding, and what it says
when it cannot open it (against the emulator's ECS)."""

from __future__ import annotations

import json
import shutil
import urllib.request

import boto3
import pytest

from cloudformation.outputs import OrchestrationOutput
from platform_tools.aws_ui import PLUGIN, UiUnavailable, WebserverTask, find_webserver
from platform_tools.cli import main

pytestmark = pytest.mark.integration


def test_without_a_running_webserver_it_says_so(deployment):
    """GIVEN a deployment whose webserver service runs no task WHEN the webserver is looked
    for THEN the error names the cluster and service and says why there may be none."""
    with pytest.raises(UiUnavailable, match=r"no webserver task is running in ecs-orch-apse2"):
        find_webserver(boto3.client("ecs"), deployment.naming)


@pytest.fixture
def tasks_stay_running(aws_endpoint):
    """The emulator's ECS tasks keep the status they start in (RUNNING), through moto's state
    manager API, instead of moving on each time they are described."""

    def state_manager(action: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{aws_endpoint}/moto-api/state-manager/{action}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()

    state_manager(
        "set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**6}},
    )
    yield
    state_manager("unset-transition", {"model_name": "ecs::task"})


def test_a_running_webserver_task_is_found_by_its_service(deployment, tasks_stay_running):
    """GIVEN a task of the webserver's service (and one of another group) WHEN looked for THEN
    the service's task is the one found; the emulator reports no container runtime id, which
    ECS Exec needs, and the error says to wait for it."""
    outputs = deployment.outputs["orchestration"]
    ecs = boto3.client("ecs")
    started = {}
    for group in ("run", f"service:{outputs[OrchestrationOutput.WEBSERVER_SERVICE_NAME]}"):
        started[group] = ecs.run_task(
            cluster=outputs[OrchestrationOutput.CLUSTER_NAME],
            taskDefinition=deployment.naming.dagster_task_family("webserver"),
            launchType="FARGATE",
            group=group,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": deployment.subnets,
                    "securityGroups": [outputs[OrchestrationOutput.TASK_SECURITY_GROUP_ID]],
                    "assignPublicIp": "DISABLED",
                }
            },
        )["tasks"][0]["taskArn"]
    webserver_task = started[f"service:{outputs[OrchestrationOutput.WEBSERVER_SERVICE_NAME]}"]

    with pytest.raises(UiUnavailable, match=f"{webserver_task} runs, but .* no runtime id"):
        find_webserver(ecs, deployment.naming)
    # What ECS Exec's port forwarding targets once the container reports one.
    target = WebserverTask("ecs-orch-apse2-dagster-01", "0123abcd", "0123abcd-1234").target
    assert target == "ecs:ecs-orch-apse2-dagster-01_0123abcd_0123abcd-1234"


@pytest.mark.skipif(shutil.which(PLUGIN) is not None, reason="the plugin is installed here")
def test_without_the_session_manager_plugin_the_command_says_what_to_install(capsys):
    """GIVEN no Session Manager plugin on PATH WHEN `aws-ui` runs THEN it exits non-zero,
    naming the plugin, before asking AWS anything."""
    with pytest.raises(SystemExit) as stopped:
        main(["aws-ui", "--env", "orch"])
    assert PLUGIN in str(stopped.value.code)
    assert "pipeline-platform aws-ui" in str(stopped.value.code)
