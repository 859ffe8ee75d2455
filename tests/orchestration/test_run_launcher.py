"""Each run its own ECS task: `EcsRunLauncher`, configured by the deployment's instance settings
(the image's dagster.yaml), launching a run against the emulator's ECS.

The launcher runs in the daemon's task and learns that task from the ECS task metadata
endpoint; here a small HTTP server stands in for the endpoint and answers with a daemon
task started in the emulator from the stack's daemon task definition. The launcher's
requests are read through botocore's public `provide-client-params` event.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget

from cloudformation.dagster_tasks import REBUILD_RUN, RUN_CONTAINER, TaskEnvironment
from cloudformation.outputs import OrchestrationOutput
from pipeline_platform.env_override import overridden
from platform_tools.dagster_instance import aws_instance, local_instance, render
from tests.orchestration.tiny_job import tiny

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def daemon_task(deployment) -> dict[str, str]:
    """A daemon task in the emulator, as the stack's daemon service starts it: the daemon task
    definition, the private subnets, the tasks' security group, no public IP."""
    outputs = deployment.outputs["orchestration"]
    task = boto3.client("ecs").run_task(
        cluster=outputs[OrchestrationOutput.CLUSTER_NAME],
        taskDefinition=deployment.naming.dagster_task_family("daemon"),
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": deployment.subnets[:1],
                "securityGroups": [outputs[OrchestrationOutput.TASK_SECURITY_GROUP_ID]],
                "assignPublicIp": "DISABLED",
            }
        },
    )["tasks"][0]
    return {"Cluster": task["clusterArn"], "TaskARN": task["taskArn"]}


@pytest.fixture
def task_metadata_endpoint(daemon_task) -> Iterator[str]:
    """ECS's task metadata endpoint (v4) as the daemon's container would see it."""

    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = daemon_task if self.path == "/task" else {"Name": "daemon"}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def instance(tmp_path, deployment, task_metadata_endpoint) -> Iterator[dg.DagsterInstance]:
    """An instance whose run launcher is the deployment's (its dagster.yaml section, as
    rendered for the image), in the daemon task's environment; storage on local disk."""
    settings = {
        **local_instance(tmp_path),
        "run_launcher": aws_instance()["run_launcher"],
    }
    (tmp_path / "dagster.yaml").write_text(render(settings))
    outputs = deployment.outputs["orchestration"]
    environment = {
        "ECS_CONTAINER_METADATA_URI_V4": task_metadata_endpoint,
        TaskEnvironment.RUN_TASK_DEFINITION: outputs[OrchestrationOutput.RUN_TASK_DEFINITION_ARN],
    }
    with overridden(environment), dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def _record(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call `client` makes from now on."""
    calls: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        calls.append(json.loads(json.dumps(params)))

    client.meta.events.register(f"provide-client-params.ecs.{operation}", remember)
    return calls


def test_a_run_is_its_own_fargate_task_and_terminating_it_stops_the_task(
    instance, deployment, daemon_task
):
    """GIVEN the deployment's run launcher in the daemon's task WHEN a run tagged with the
    rebuild's size is launched THEN one RunTask starts the stack's run task definition with
    `dagster api execute_run`, the size from the run's tags, the daemon's private subnet and
    security group and no public IP; terminating the run stops that task."""
    from dagster_aws.ecs import EcsRunLauncher

    launcher = instance.run_launcher
    assert isinstance(launcher, EcsRunLauncher)
    run_tasks = _record(launcher.ecs, "RunTask")
    stop_tasks = _record(launcher.ecs, "StopTask")
    outputs = deployment.outputs["orchestration"]

    target = ModuleTarget(
        module_name="tests.orchestration.tiny_job",
        attribute="defs",
        working_directory=str(ROOT),
        location_name="tiny",
    )
    with WorkspaceProcessContext(instance, target) as workspace_context:
        workspace = workspace_context.create_request_context()
        remote_job = (
            workspace.get_code_location("tiny")
            .get_repository("__repository__")
            .get_full_job("tiny")
        )
        run = instance.create_run_for_job(
            job_def=tiny,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            tags=REBUILD_RUN.run_tags(),
        )
        instance.launch_run(run.run_id, workspace)

    (call,) = run_tasks
    assert call["taskDefinition"] == outputs[OrchestrationOutput.RUN_TASK_DEFINITION_ARN]
    assert call["cluster"] == daemon_task["Cluster"]
    (container,) = call["overrides"]["containerOverrides"]
    assert container["name"] == RUN_CONTAINER
    assert container["command"][:3] == ["dagster", "api", "execute_run"]
    assert run.run_id in container["command"][3]
    assert (call["overrides"]["cpu"], call["overrides"]["memory"]) == (
        str(REBUILD_RUN.cpu),
        str(REBUILD_RUN.memory),
    )
    assert call["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": deployment.subnets[:1],
        "securityGroups": [outputs[OrchestrationOutput.TASK_SECURITY_GROUP_ID]],
        "assignPublicIp": "DISABLED",
    }
    assert {"key": "dagster/run_id", "value": run.run_id} in call["tags"]

    task_arn = instance.get_run_by_id(run.run_id).tags["ecs/task_arn"]
    ecs = boto3.client("ecs")
    (task,) = ecs.describe_tasks(cluster=daemon_task["Cluster"], tasks=[task_arn])["tasks"]
    assert task["taskDefinitionArn"] == outputs[OrchestrationOutput.RUN_TASK_DEFINITION_ARN]

    assert launcher.terminate(run.run_id) is True
    assert stop_tasks == [{"task": task_arn, "cluster": daemon_task["Cluster"]}]
    (task,) = ecs.describe_tasks(cluster=daemon_task["Cluster"], tasks=[task_arn])["tasks"]
    assert task["desiredStatus"] == "STOPPED"
