"""Open a deployment's Dagster UI on this machine, through SSM port forwarding into its task.

The webserver listens on its task's loopback only and the stack lets nothing in, so the
UI is reached the way ECS Exec reaches a task: a Session Manager port-forwarding session
(`AWS-StartPortForwardingSession`) to the webserver's container, which the AWS Session
Manager plugin (`session-manager-plugin`, installed beside the AWS CLI) carries to a
local port. The caller needs `ecs:ListTasks`, `ecs:DescribeTasks` on the cluster and
`ssm:StartSession` on the task.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloudformation.dagster_tasks import WEBSERVER_PORT
from cloudformation.naming import Naming

PLUGIN = "session-manager-plugin"
PORT_FORWARDING = "AWS-StartPortForwardingSession"
WEBSERVER_CONTAINER = "webserver"


class UiUnavailable(RuntimeError):
    """The UI cannot be opened; the message says why and what to do."""


@dataclass(frozen=True)
class WebserverTask:
    """The running webserver task a session goes to."""

    cluster: str
    task_id: str
    runtime_id: str

    @property
    def target(self) -> str:
        """The Session Manager target of the webserver's container (as ECS Exec names it)."""
        return f"ecs:{self.cluster}_{self.task_id}_{self.runtime_id}"


def find_webserver(ecs: Any, naming: Naming) -> WebserverTask:
    """The deployment's running webserver task; fails saying why there is none."""
    cluster, service = naming.dagster_cluster, naming.dagster_service(WEBSERVER_CONTAINER)
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    tasks = [t for t in tasks if t.get("group") == f"service:{service}"]
    if not tasks:
        raise UiUnavailable(
            f"no webserver task is running in {cluster} (service {service}); after the first "
            "`stack deploy` the image build and the task's start take several minutes"
        )
    task = tasks[0]
    container: dict[str, Any] = next(
        (c for c in task.get("containers", []) if c.get("name") == WEBSERVER_CONTAINER), {}
    )
    if task.get("lastStatus") != "RUNNING":
        raise UiUnavailable(
            f"the webserver task {task['taskArn']} is {task.get('lastStatus', 'starting')}; "
            "try again when it runs"
        )
    if not container.get("runtimeId"):
        raise UiUnavailable(
            f"the webserver task {task['taskArn']} runs, but its container reports no runtime "
            "id yet (ECS Exec reaches a container by it); try again in a minute"
        )
    return WebserverTask(cluster, task["taskArn"].rsplit("/", 1)[-1], container["runtimeId"])


def plugin_command(
    session: dict[str, Any], *, region: str, parameters: dict[str, Any], endpoint: str
) -> list[str]:
    """How the AWS CLI hands a started session to the Session Manager plugin."""
    return [
        PLUGIN,
        json.dumps(session),
        region,
        "StartSession",
        "",
        json.dumps(parameters),
        endpoint,
    ]


def open_ui(
    boto_session: Any,
    naming: Naming,
    *,
    local_port: int,
    announce: Callable[[str], None] = print,
) -> int:
    """Forward `localhost:<local_port>` to the webserver until the plugin stops (Ctrl-C);
    return the plugin's exit status."""
    plugin = shutil.which(PLUGIN)
    if plugin is None:
        raise UiUnavailable(
            f"{PLUGIN} is not installed: it comes with AWS's Session Manager plugin for the AWS "
            "CLI (see 'Install the Session Manager plugin' in the AWS Systems Manager guide)"
        )
    webserver = find_webserver(boto_session.client("ecs"), naming)
    ssm = boto_session.client("ssm")
    parameters = {
        "Target": webserver.target,
        "DocumentName": PORT_FORWARDING,
        "Parameters": {"portNumber": [str(WEBSERVER_PORT)], "localPortNumber": [str(local_port)]},
    }
    started = ssm.start_session(**parameters)
    started.pop("ResponseMetadata", None)
    announce(f"Dagster UI: http://localhost:{local_port}  (Ctrl-C closes it)")
    command = plugin_command(
        started, region=naming.region, parameters=parameters, endpoint=ssm.meta.endpoint_url
    )
    command[0] = plugin
    return subprocess.run(command, check=False).returncode
