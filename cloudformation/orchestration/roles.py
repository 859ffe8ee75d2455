"""The roles of Dagster's tasks: the execution role ECS starts them with, the daemon's and the
webserver's. A run's task runs as the analytics stack's orchestrator role, unchanged.

- execution role: pull the image, write the tasks' logs, read the database secret;
- daemon: start, watch and stop run tasks of its cluster, pass exactly the run task's two
  roles to ECS, read a failed run task's log; and what the schedule and sensors it
  evaluates read: the stacks' outputs, the lake's state, the alarm topic, the heartbeat;
- webserver: stop a run's task (terminating a run from the UI), read the runs' compute
  logs, and the SSM channels ECS Exec opens for port forwarding.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import cloudformation as cfna
from awacs import cloudwatch as cwa
from awacs import ec2 as ec2a
from awacs import ecr as ecra
from awacs import ecs as ecsa
from awacs import iam as iama
from awacs import kms as kmsa
from awacs import logs as logsa
from awacs import s3 as s3a
from awacs import secretsmanager as sm
from awacs import sns as snsa
from awacs import ssmmessages as ssmm
from awacs.aws import ArnEquals, Condition, Statement, StringEquals
from troposphere import AWSHelperFn, GetAtt, Ref, Template
from troposphere.ecr import Repository
from troposphere.iam import Role

from cloudformation.buckets import list_prefixes, objects_under
from cloudformation.dagster_tasks import HEARTBEAT_NAMESPACE
from cloudformation.iam import NO_RESOURCE_TYPE, allow, arn, global_arn, service_role
from cloudformation.layout import COMPUTE_LOGS_PREFIX, STATE_PREFIX
from cloudformation.naming import ANALYTICS_STACK, STREAMING_STACK, Naming
from cloudformation.orchestration.parameters import OrchestrationParameters

ECS_TASKS = "ecs-tasks.amazonaws.com"
#: The stacks whose outputs the schedule and sensors read (as the pipeline does in `aws`).
STACKS_THE_DAEMON_READS = (STREAMING_STACK, ANALYTICS_STACK)


@dataclass(frozen=True)
class TaskRoles:
    """The roles of the Dagster tasks this stack defines."""

    execution: Role
    daemon: Role
    webserver: Role


def cluster_arn(naming: Naming) -> AWSHelperFn:
    """The ARN of the Dagster cluster (known before it exists, from its name)."""
    return arn("ecs", f"cluster/{naming.dagster_cluster}")


def cluster_tasks(naming: Naming) -> AWSHelperFn:
    """Every task of the Dagster cluster."""
    return arn("ecs", f"task/{naming.dagster_cluster}/*")


def log_group_arn(naming: Naming) -> AWSHelperFn:
    """The ARN of the tasks' log group, its streams included."""
    return arn("logs", f"log-group:{naming.dagster_log_group}:*")


def add_task_roles(
    t: Template,
    naming: Naming,
    params: OrchestrationParameters,
    *,
    repository: Repository,
    database_secret: AWSHelperFn,
    key_arn: AWSHelperFn,
) -> TaskRoles:
    """Add the execution, daemon and webserver roles."""
    execution = t.add_resource(
        service_role(
            "TaskExecutionRole",
            role_name=naming.name("role", "dagsterexecution"),
            service=ECS_TASKS,
            policy_name="start-dagster-tasks",
            description="ECS starts Dagster's tasks with it: image, logs, database secret.",
            statements=[
                # ECR's sign-in has no resource type: "*" is the only resource AWS accepts.
                allow([ecra.GetAuthorizationToken], [NO_RESOURCE_TYPE], sid="SignInToEcr"),
                allow(
                    [
                        ecra.BatchCheckLayerAvailability,
                        ecra.GetDownloadUrlForLayer,
                        ecra.BatchGetImage,
                    ],
                    [GetAtt(repository, "Arn")],
                    sid="PullTheImage",
                ),
                allow(
                    [logsa.CreateLogStream, logsa.PutLogEvents],
                    [log_group_arn(naming)],
                    sid="WriteTheTaskLogs",
                ),
                allow([sm.GetSecretValue], [database_secret], sid="ReadTheDatabaseSecret"),
                allow([kmsa.Decrypt], [key_arn], sid="DecryptTheDatabaseSecret"),
            ],
        )
    )
    run_role_arns = [GetAtt(execution, "Arn"), Ref(params.stacks.orchestrator_role_arn)]
    daemon = t.add_resource(
        service_role(
            "DaemonRole",
            role_name=naming.name("role", "dagsterdaemon"),
            service=ECS_TASKS,
            policy_name="launch-runs-and-evaluate-schedules",
            description="Dagster's daemon: one ECS task per run, and the schedule and sensors.",
            statements=[
                *_run_launcher_statements(naming, run_role_arns),
                *_schedule_and_sensor_statements(naming, params),
            ],
        )
    )
    webserver = t.add_resource(
        service_role(
            "WebserverRole",
            role_name=naming.name("role", "dagsterwebserver"),
            service=ECS_TASKS,
            policy_name="serve-the-ui",
            description="Dagster's webserver: stop a run's task, read compute logs, ECS Exec.",
            statements=[
                allow(
                    [ecsa.DescribeTasks, ecsa.StopTask],
                    [cluster_tasks(naming)],
                    condition=Condition(ArnEquals("ecs:cluster", cluster_arn(naming))),
                    sid="StopRunTasks",
                ),
                # The run launcher checks its task definition when the webserver builds it.
                allow([ecsa.DescribeTaskDefinition], [NO_RESOURCE_TYPE], sid="ReadTaskDefinitions"),
                *_compute_log_statements(params),
                # ECS Exec's agent opens these channels; they have no resource type.
                allow(
                    [
                        ssmm.CreateControlChannel,
                        ssmm.CreateDataChannel,
                        ssmm.OpenControlChannel,
                        ssmm.OpenDataChannel,
                    ],
                    [NO_RESOURCE_TYPE],
                    sid="ExecForPortForwarding",
                ),
                # The cluster encrypts ECS Exec sessions with the orchestration key.
                allow([kmsa.Decrypt], [key_arn], sid="DecryptExecSessions"),
            ],
        )
    )
    return TaskRoles(execution=execution, daemon=daemon, webserver=webserver)


def _run_launcher_statements(naming: Naming, run_role_arns: list[AWSHelperFn]) -> list[Statement]:
    """What `EcsRunLauncher` and run monitoring call, limited to the Dagster cluster."""
    in_cluster = Condition(ArnEquals("ecs:cluster", cluster_arn(naming)))
    return [
        allow(
            [ecsa.RunTask],
            [arn("ecs", f"task-definition/{naming.dagster_task_family('run')}:*")],
            condition=in_cluster,
            sid="StartRunTasks",
        ),
        allow(
            [ecsa.DescribeTasks, ecsa.StopTask],
            [cluster_tasks(naming)],
            condition=in_cluster,
            sid="WatchAndStopRunTasks",
        ),
        # RunTask with tags (the run's id and job) needs TagResource on the new task.
        allow(
            [ecsa.TagResource],
            [cluster_tasks(naming)],
            condition=Condition(StringEquals("ecs:CreateAction", "RunTask")),
            sid="TagRunTasks",
        ),
        # Neither has a resource type: the launcher checks the run task definition, and
        # copies the daemon task's subnets and security group from its network interface.
        allow(
            [ecsa.DescribeTaskDefinition, ec2a.DescribeNetworkInterfaces],
            [NO_RESOURCE_TYPE],
            sid="ReadTheLaunchSettings",
        ),
        allow(
            [iama.PassRole],
            run_role_arns,
            condition=Condition(StringEquals("iam:PassedToService", ECS_TASKS)),
            sid="PassOnlyTheRunTaskRoles",
        ),
        # Run monitoring adds a failed run task's last log lines to the run's failure.
        allow(
            [logsa.GetLogEvents],
            [arn("logs", f"log-group:{naming.dagster_log_group}:log-stream:run/*")],
            sid="ReadFailedRunLogs",
        ),
    ]


def _schedule_and_sensor_statements(
    naming: Naming, params: OrchestrationParameters
) -> list[Statement]:
    """What the hourly schedule and the notification sensors read and send."""
    lake_arn = global_arn("s3", f"${{{params.stacks.lake_bucket.title}}}")
    return [
        allow(
            [cfna.DescribeStacks],
            [
                arn("cloudformation", f"stack/{naming.stack(purpose)}/*")
                for purpose in STACKS_THE_DAEMON_READS
            ],
            sid="ReadTheStackOutputs",
        ),
        # The schedule asks where the lake stopped.
        allow([s3a.GetObject], [objects_under(lake_arn, STATE_PREFIX)], sid="ReadTheLakeState"),
        list_prefixes(lake_arn, [STATE_PREFIX], sid="ListTheLakeState"),
        allow([kmsa.Decrypt], [Ref(params.stacks.lake_key_arn)], sid="DecryptTheLakeState"),
        allow([snsa.Publish], [Ref(params.stacks.alarm_topic_arn)], sid="NotifyTheAlarmTopic"),
        allow(
            [kmsa.GenerateDataKey, kmsa.Decrypt],
            [Ref(params.stacks.data_key_arn)],
            sid="UseTheAlarmTopicKey",
        ),
        # PutMetricData has no resource type; the condition keeps it to the heartbeat.
        allow(
            [cwa.PutMetricData],
            [NO_RESOURCE_TYPE],
            condition=Condition(StringEquals("cloudwatch:namespace", HEARTBEAT_NAMESPACE)),
            sid="PutTheHeartbeat",
        ),
    ]


def _compute_log_statements(params: OrchestrationParameters) -> list[Statement]:
    """Reading the runs' compute logs under the lake bucket's `pipeline/` prefix (the runs
    write them as the orchestrator role, whose policy has that prefix already)."""
    lake_arn = global_arn("s3", f"${{{params.stacks.lake_bucket.title}}}")
    return [
        allow(
            [s3a.GetObject],
            [objects_under(lake_arn, COMPUTE_LOGS_PREFIX)],
            sid="ReadComputeLogs",
        ),
        list_prefixes(lake_arn, [COMPUTE_LOGS_PREFIX], sid="ListComputeLogs"),
        allow([kmsa.Decrypt], [Ref(params.stacks.lake_key_arn)], sid="DecryptComputeLogs"),
    ]
