"""Dagster's processes as ECS tasks: the webserver and exactly one daemon as services, and the
task definition every run's task starts from.

The code location is loaded from the image by the webserver and the daemon (the
`workspace.yaml` it carries), not served by a gRPC code server of its own: every deploy
ships one image to all three task definitions at once, so a separate server would only
add a third always-on task and service discovery between them, and the code location
loads with no network, in seconds. A run's task is started by the daemon's
`EcsRunLauncher` from the run task definition, with the run's command and its size.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, GetAtt, If, Join, Ref, Region, Template
from troposphere.ecs import (
    AwsvpcConfiguration,
    ContainerDefinition,
    DeploymentCircuitBreaker,
    DeploymentConfiguration,
    Environment,
    HealthCheck,
    LinuxParameters,
    LogConfiguration,
    NetworkConfiguration,
    RuntimePlatform,
    Secret,
    Service,
    TaskDefinition,
)

from cloudformation.dagster_tasks import (
    DAEMON,
    HOURLY_RUN,
    RUN_CONTAINER,
    WEBSERVER,
    WEBSERVER_PORT,
    TaskEnvironment,
    TaskSize,
)
from cloudformation.naming import Naming
from cloudformation.orchestration.cluster import DagsterCluster, on_demand
from cloudformation.orchestration.database import (
    DATABASE_NAME,
    SECRET_PASSWORD_KEY,
    SECRET_USERNAME_KEY,
)
from cloudformation.orchestration.parameters import HAS_IMAGE, OrchestrationParameters
from cloudformation.orchestration.roles import TaskRoles

WORKSPACE = "workspace.yaml"
WEBSERVER_COMMAND = [
    "dagster-webserver",
    # Loopback only: the UI is reached through SSM port forwarding into the task.
    "--host",
    "127.0.0.1",
    "--port",
    str(WEBSERVER_PORT),
    "--workspace",
    WORKSPACE,
]
DAEMON_COMMAND = ["dagster-daemon", "run", "--workspace", WORKSPACE]
# The daemon's heartbeat is in the database: a daemon that stops beating is replaced.
DAEMON_HEALTH = ["CMD", "dagster-daemon", "liveness-check"]
WEBSERVER_HEALTH = [
    "CMD",
    "python",
    "-c",
    f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{WEBSERVER_PORT}"
    "/server_info', timeout=5)",
]


@dataclass(frozen=True)
class DagsterServices:
    """The two services and the run task definition."""

    webserver: Service
    daemon: Service
    run_task: TaskDefinition


@dataclass(frozen=True)
class TaskContext:
    """What every Dagster task gets: its image, settings, secrets and log group."""

    image: AWSHelperFn
    environment: list[Environment]
    secrets: list[Secret]
    log_group: AWSHelperFn


def task_context(
    naming: Naming,
    params: OrchestrationParameters,
    *,
    image_uri: AWSHelperFn,
    database_address: AWSHelperFn,
    database_port: AWSHelperFn,
    database_secret: AWSHelperFn,
    log_group: AWSHelperFn,
    run_task_definition: AWSHelperFn | str,
) -> TaskContext:
    """The image, variables and secrets every Dagster task (webserver, daemon, run) has."""
    variables: dict[str, AWSHelperFn | str] = {
        # The pipeline's own settings: `aws` names come from the stacks' outputs.
        "PLATFORM_ENV": "aws",
        "DEPLOYMENT_ENV": naming.env,
        "AWS_DEFAULT_REGION": Region,
        "FIRST_WRITE_DAY": Ref(params.first_write_day),
        # The instance's (the image's dagster.yaml reads them).
        TaskEnvironment.PG_HOST: database_address,
        TaskEnvironment.PG_PORT: database_port,
        TaskEnvironment.PG_DB: DATABASE_NAME,
        TaskEnvironment.RUN_TASK_DEFINITION: run_task_definition,
        TaskEnvironment.COMPUTE_LOG_BUCKET: Ref(params.stacks.lake_bucket),
    }
    return TaskContext(
        image=Join("", [image_uri, ":", Ref(params.image_tag)]),
        environment=[Environment(Name=str(k), Value=v) for k, v in variables.items()],
        secrets=[
            Secret(
                Name=str(TaskEnvironment.PG_USERNAME),
                ValueFrom=Join("", [database_secret, f":{SECRET_USERNAME_KEY}::"]),
            ),
            Secret(
                Name=str(TaskEnvironment.PG_PASSWORD),
                ValueFrom=Join("", [database_secret, f":{SECRET_PASSWORD_KEY}::"]),
            ),
        ],
        log_group=log_group,
    )


def add_run_task_definition(
    t: Template,
    naming: Naming,
    params: OrchestrationParameters,
    *,
    context: TaskContext,
    roles: TaskRoles,
) -> TaskDefinition:
    """Add the task definition runs start from: the orchestrator role, the hourly size."""
    return t.add_resource(
        _task_definition(
            "RunTaskDefinition",
            naming,
            role="run",
            size=HOURLY_RUN,
            task_role=Ref(params.stacks.orchestrator_role_arn),
            execution_role=GetAtt(roles.execution, "Arn"),
            container=_container(RUN_CONTAINER, context, command=None, health=None),
        )
    )


def add_services(
    t: Template,
    naming: Naming,
    params: OrchestrationParameters,
    *,
    context: TaskContext,
    roles: TaskRoles,
    cluster: DagsterCluster,
    security_group: AWSHelperFn,
    run_task: TaskDefinition,
) -> DagsterServices:
    """Add the webserver's and the daemon's task definitions and services."""
    webserver_task = t.add_resource(
        _task_definition(
            "WebserverTaskDefinition",
            naming,
            role="webserver",
            size=WEBSERVER,
            task_role=GetAtt(roles.webserver, "Arn"),
            execution_role=GetAtt(roles.execution, "Arn"),
            container=_container(
                "webserver", context, command=WEBSERVER_COMMAND, health=WEBSERVER_HEALTH
            ),
        )
    )
    daemon_task = t.add_resource(
        _task_definition(
            "DaemonTaskDefinition",
            naming,
            role="daemon",
            size=DAEMON,
            task_role=GetAtt(roles.daemon, "Arn"),
            execution_role=GetAtt(roles.execution, "Arn"),
            container=_container("daemon", context, command=DAEMON_COMMAND, health=DAEMON_HEALTH),
        )
    )
    network = NetworkConfiguration(
        AwsvpcConfiguration=AwsvpcConfiguration(
            AssignPublicIp="DISABLED",
            Subnets=Ref(params.subnets),
            SecurityGroups=[security_group],
        )
    )
    webserver = t.add_resource(
        Service(
            "WebserverService",
            ServiceName=naming.dagster_service("webserver"),
            Cluster=Ref(cluster.cluster),
            TaskDefinition=Ref(webserver_task),
            DesiredCount=If(HAS_IMAGE, 1, 0),
            CapacityProviderStrategy=on_demand(),
            NetworkConfiguration=network,
            # The UI is opened through ECS Exec's SSM port forwarding.
            EnableExecuteCommand=True,
            PropagateTags="SERVICE",
            DeploymentConfiguration=DeploymentConfiguration(
                MaximumPercent=200,
                MinimumHealthyPercent=100,
                DeploymentCircuitBreaker=DeploymentCircuitBreaker(Enable=True, Rollback=True),
            ),
        )
    )
    daemon = t.add_resource(
        Service(
            "DaemonService",
            ServiceName=naming.dagster_service("daemon"),
            Cluster=Ref(cluster.cluster),
            TaskDefinition=Ref(daemon_task),
            DesiredCount=If(HAS_IMAGE, 1, 0),
            CapacityProviderStrategy=on_demand(),
            NetworkConfiguration=network,
            EnableExecuteCommand=False,
            PropagateTags="SERVICE",
            # Exactly one daemon, also while a deploy replaces it: the old task stops before
            # the new one starts (two schedulers would launch every tick twice).
            DeploymentConfiguration=DeploymentConfiguration(
                MaximumPercent=100,
                MinimumHealthyPercent=0,
                DeploymentCircuitBreaker=DeploymentCircuitBreaker(Enable=True, Rollback=True),
            ),
        )
    )
    return DagsterServices(webserver=webserver, daemon=daemon, run_task=run_task)


def _container(
    name: str, context: TaskContext, *, command: list[str] | None, health: list[str] | None
) -> ContainerDefinition:
    optional: dict[str, object] = {}
    if command is not None:
        optional["Command"] = command
    if health is not None:
        # The code location loads (dbt's manifest included) before either answers.
        optional["HealthCheck"] = HealthCheck(
            Command=health, Interval=30, Timeout=10, Retries=3, StartPeriod=120
        )
    return ContainerDefinition(
        Name=name,
        Image=context.image,
        Essential=True,
        Environment=context.environment,
        Secrets=context.secrets,
        # ECS Exec's agent and Dagster's subprocesses are reaped by an init process.
        LinuxParameters=LinuxParameters(InitProcessEnabled=True),
        LogConfiguration=LogConfiguration(
            LogDriver="awslogs",
            Options={
                "awslogs-group": context.log_group,
                "awslogs-region": Region,
                "awslogs-stream-prefix": name,
            },
        ),
        **optional,
    )


def _task_definition(
    title: str,
    naming: Naming,
    *,
    role: str,
    size: TaskSize,
    task_role: AWSHelperFn,
    execution_role: AWSHelperFn,
    container: ContainerDefinition,
) -> TaskDefinition:
    return TaskDefinition(
        title,
        Family=naming.dagster_task_family(role),
        RequiresCompatibilities=["FARGATE"],
        NetworkMode="awsvpc",
        Cpu=str(size.cpu),
        Memory=str(size.memory),
        RuntimePlatform=RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"),
        TaskRoleArn=task_role,
        ExecutionRoleArn=execution_role,
        ContainerDefinitions=[container],
    )
