"""Facts the orchestration stack and the Dagster deployment share: task sizes, the run
container, the variables every Dagster task reads, and the daemon's heartbeat metric.

Plain constants (no troposphere), so the code location and the instance settings can
import them without loading the template code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class TaskSize:
    """A Fargate task's size: `cpu` in CPU units (1024 = 1 vCPU), `memory` in MiB."""

    cpu: int
    memory: int

    def run_tags(self) -> dict[str, str]:
        """The run tags `EcsRunLauncher` sizes a run's task by."""
        return {"ecs/cpu": str(self.cpu), "ecs/memory": str(self.memory)}


#: The webserver and the daemon each load the code location (the dbt manifest included).
WEBSERVER = TaskSize(cpu=512, memory=2048)
DAEMON = TaskSize(cpu=512, memory=2048)
#: An hourly run: an incremental export, the lake days it touches, a dbt build of the
#: changed hours. Also the run task definition's own size (a run with no size tags).
HOURLY_RUN = TaskSize(cpu=1024, memory=4096)
#: A rebuild reads one full export of the table and rewrites every lake day.
REBUILD_RUN = TaskSize(cpu=4096, memory=16384)
#: The table observation: two API calls.
OBSERVATION_RUN = TaskSize(cpu=512, memory=1024)

#: The container of the run task definition that `EcsRunLauncher` gives each run's command.
RUN_CONTAINER = "run"
#: Where `dagster-webserver` listens inside its task (reached through SSM port forwarding).
WEBSERVER_PORT = 3000
#: Where the image keeps the instance settings (`dagster.yaml`) and the code location.
DAGSTER_HOME = "/opt/dagster/home"
APP_DIR = "/opt/dagster/app"


class TaskEnvironment(StrEnum):
    """Variables the stack sets in every Dagster task and the AWS instance settings read."""

    PG_HOST = "DAGSTER_PG_HOST"
    PG_PORT = "DAGSTER_PG_PORT"
    PG_DB = "DAGSTER_PG_DB"
    #: Both from the database's managed secret, as ECS secrets.
    PG_USERNAME = "DAGSTER_PG_USERNAME"
    PG_PASSWORD = "DAGSTER_PG_PASSWORD"
    RUN_TASK_DEFINITION = "DAGSTER_RUN_TASK_DEFINITION"
    COMPUTE_LOG_BUCKET = "DAGSTER_COMPUTE_LOG_BUCKET"


#: The daemon's heartbeat: a sensor the daemon evaluates puts one datapoint a minute; the
#: orchestration stack's alarm fires when they stop.
HEARTBEAT_NAMESPACE = "IotDataPlatform/Dagster"
HEARTBEAT_METRIC = "DaemonHeartbeat"
HEARTBEAT_DIMENSION = "Deployment"
HEARTBEAT_INTERVAL_SECONDS = 60
