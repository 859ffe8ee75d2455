"""The orchestration stack: Dagster OSS on ECS Fargate, each run its own task.

`build_orchestration` only assembles; each concern is a module of its own:
`parameters` (every parameter and condition), `encryption` (the orchestration key),
`network` (security groups), `database` (RDS PostgreSQL, Dagster's storage), `image`
(the ECR repository and the CodeBuild project building the image), `roles`, `cluster`
(ECS, Fargate and Fargate Spot, the log group), `services` (webserver, one daemon, the
run task definition) and `alarms` (the daemon's heartbeat).
"""

from __future__ import annotations

from troposphere import AWSHelperFn, GetAtt, Ref, Template

from cloudformation.kms import key_arn
from cloudformation.naming import Naming
from cloudformation.orchestration.alarms import add_heartbeat_alarm
from cloudformation.orchestration.cluster import add_cluster
from cloudformation.orchestration.database import add_database, secret_arn
from cloudformation.orchestration.encryption import add_orchestration_key
from cloudformation.orchestration.image import add_image_build
from cloudformation.orchestration.network import add_network
from cloudformation.orchestration.parameters import declare_parameters
from cloudformation.orchestration.roles import add_task_roles
from cloudformation.orchestration.services import (
    TaskContext,
    add_run_task_definition,
    add_services,
    task_context,
)
from cloudformation.outputs import OrchestrationOutput
from cloudformation.parameters import export_outputs

__all__ = ["build_orchestration"]


def build_orchestration(naming: Naming) -> Template:
    """The orchestration stack's template for one environment and region."""
    t = Template(
        Description=f"IoT orchestration ({naming.env}, {naming.region}): Dagster on ECS Fargate "
        "(webserver, one daemon, a task per run), its PostgreSQL storage, the image "
        "repository and its build."
    )
    params = declare_parameters(t)
    key = key_arn(add_orchestration_key(t, naming))
    network = add_network(t, naming, params)
    database = add_database(
        t, naming, params, security_group=GetAtt(network.database, "GroupId"), key_arn=key
    )
    image = add_image_build(t, naming, params, key_arn=key)
    roles = add_task_roles(
        t,
        naming,
        params,
        repository=image.repository,
        database_secret=secret_arn(database),
        key_arn=key,
    )
    cluster = add_cluster(t, naming, params, key_arn=key)

    def context(run_task_definition: AWSHelperFn | str) -> TaskContext:
        return task_context(
            naming,
            params,
            image_uri=GetAtt(image.repository, "RepositoryUri"),
            database_address=GetAtt(database, "Endpoint.Address"),
            database_port=GetAtt(database, "Endpoint.Port"),
            database_secret=secret_arn(database),
            log_group=Ref(cluster.log_group),
            run_task_definition=run_task_definition,
        )

    # A run's own process builds the instance too: it names the family (the newest revision).
    run_task = add_run_task_definition(
        t, naming, params, context=context(naming.dagster_task_family("run")), roles=roles
    )
    services = add_services(
        t,
        naming,
        params,
        context=context(Ref(run_task)),
        roles=roles,
        cluster=cluster,
        security_group=GetAtt(network.tasks, "GroupId"),
        run_task=run_task,
    )
    add_heartbeat_alarm(t, naming, params)

    export_outputs(
        t,
        {
            OrchestrationOutput.CLUSTER_NAME: (Ref(cluster.cluster), "ECS cluster of Dagster."),
            OrchestrationOutput.CLUSTER_ARN: (
                GetAtt(cluster.cluster, "Arn"),
                "ARN of the ECS cluster.",
            ),
            OrchestrationOutput.WEBSERVER_SERVICE_NAME: (
                GetAtt(services.webserver, "Name"),
                "ECS service of the Dagster webserver (the UI).",
            ),
            OrchestrationOutput.DAEMON_SERVICE_NAME: (
                GetAtt(services.daemon, "Name"),
                "ECS service of the Dagster daemon.",
            ),
            OrchestrationOutput.RUN_TASK_DEFINITION_ARN: (
                Ref(run_task),
                "Task definition every run's task starts from.",
            ),
            OrchestrationOutput.IMAGE_REPOSITORY_URI: (
                GetAtt(image.repository, "RepositoryUri"),
                "ECR repository of the project's image.",
            ),
            OrchestrationOutput.IMAGE_BUILD_PROJECT_NAME: (
                Ref(image.project),
                "CodeBuild project building the image.",
            ),
            OrchestrationOutput.IMAGE_TAG: (Ref(params.image_tag), "The image the tasks run."),
            OrchestrationOutput.DATABASE_ENDPOINT_ADDRESS: (
                GetAtt(database, "Endpoint.Address"),
                "Host of Dagster's PostgreSQL database.",
            ),
            OrchestrationOutput.DATABASE_SECRET_ARN: (
                secret_arn(database),
                "Secrets Manager secret with the database credentials (managed by RDS).",
            ),
            OrchestrationOutput.LOG_GROUP_NAME: (
                Ref(cluster.log_group),
                "Log group of every Dagster task.",
            ),
            OrchestrationOutput.TASK_SECURITY_GROUP_ID: (
                GetAtt(network.tasks, "GroupId"),
                "Security group of Dagster's tasks.",
            ),
        },
    )
    return t
