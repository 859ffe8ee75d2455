"""`stack deploy` of the three stacks into the local cloud, the image built on the way, and
`stack destroy` of them.

The emulator creates the orchestration stack's ECS cluster, task definitions, services,
RDS instance (with its managed secret), ECR repository, roles, security groups and log
groups. It skips the CodeBuild project (created from the template by the local cloud),
the security groups' separate egress rules and the heartbeat alarm; its ECS services
start no task and keep the desired count they were created with.
"""

from __future__ import annotations

import warnings

import boto3
import pytest

from cloudformation.dagster_tasks import HOURLY_RUN, RUN_CONTAINER, TaskEnvironment
from cloudformation.deploy import destroy
from cloudformation.image_build import build_source_archive
from cloudformation.naming import ARTIFACTS_PURPOSE
from cloudformation.outputs import AnalyticsOutput, OrchestrationOutput
from tests.orchestration.conftest import deploy_all

pytestmark = pytest.mark.integration


def test_one_deploy_builds_the_image_and_runs_it(deployment):
    """GIVEN a fresh emulator WHEN the three stacks deploy THEN the source archive is uploaded,
    the image is built by the stack's CodeBuild project with the archive's sha256 as its
    tag, and the run task definition runs that image as the orchestrator role."""
    naming, outputs = deployment.naming, deployment.outputs
    orchestration = outputs["orchestration"]
    archive = build_source_archive()
    account = boto3.client("sts").get_caller_identity()["Account"]

    assert orchestration[OrchestrationOutput.IMAGE_TAG] == archive.sha256
    boto3.client("s3").head_object(
        Bucket=naming.bucket(ARTIFACTS_PURPOSE, account), Key=archive.s3_key
    )
    codebuild = boto3.client("codebuild")
    (build_id,) = codebuild.list_builds_for_project(projectName=naming.image_build)["ids"]
    assert codebuild.batch_get_builds(ids=[build_id])["builds"][0]["buildStatus"] == "SUCCEEDED"
    assert any("image" in line and "built and pushed" in line for line in deployment.log)

    task = boto3.client("ecs").describe_task_definition(
        taskDefinition=orchestration[OrchestrationOutput.RUN_TASK_DEFINITION_ARN]
    )["taskDefinition"]
    (container,) = task["containerDefinitions"]
    assert container["name"] == RUN_CONTAINER
    assert container["image"] == (
        f"{orchestration[OrchestrationOutput.IMAGE_REPOSITORY_URI]}:{archive.sha256}"
    )
    assert task["taskRoleArn"] == outputs["analytics"][AnalyticsOutput.ORCHESTRATOR_ROLE_ARN]
    assert task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == (str(HOURLY_RUN.cpu), str(HOURLY_RUN.memory))
    assert "command" not in container  # the launcher gives each run's


def test_the_tasks_get_the_database_password_as_a_secret_never_as_a_value(deployment):
    """GIVEN the deployed stack THEN its database exists privately with a password RDS
    manages, the tasks' password comes from that secret, and no variable holds it."""
    orchestration = deployment.outputs["orchestration"]
    (database,) = boto3.client("rds").describe_db_instances(
        DBInstanceIdentifier=deployment.naming.dagster_database
    )["DBInstances"]
    assert database["Engine"] == "postgres"
    assert database["StorageEncrypted"] is True
    assert database["PubliclyAccessible"] is False
    secret_arn = orchestration[OrchestrationOutput.DATABASE_SECRET_ARN]
    assert database["MasterUserSecret"]["SecretArn"] == secret_arn
    assert (
        "password"
        in boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    )

    task = boto3.client("ecs").describe_task_definition(
        taskDefinition=orchestration[OrchestrationOutput.RUN_TASK_DEFINITION_ARN]
    )["taskDefinition"]
    (container,) = task["containerDefinitions"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets[TaskEnvironment.PG_PASSWORD] == f"{secret_arn}:password::"
    variables = {v["name"]: v["value"] for v in container["environment"]}
    assert TaskEnvironment.PG_PASSWORD not in variables
    assert (
        variables[TaskEnvironment.PG_HOST]
        == orchestration[OrchestrationOutput.DATABASE_ENDPOINT_ADDRESS]
    )


def test_deploying_unchanged_source_again_builds_nothing(deployment):
    """GIVEN the deployed stacks WHEN deployed again with the same source THEN the archive is
    not uploaded again and every output stays as it was (the same image tag)."""
    again = deploy_all(
        deployment.naming.env, network=(deployment.vpc, deployment.subnets), again=True
    )
    assert again.outputs == deployment.outputs
    assert any(line.endswith("already uploaded") for line in again.log)


def test_destroy_removes_the_three_stacks(aws_endpoint):
    """GIVEN the three stacks deployed WHEN destroyed THEN the orchestration stack goes first
    and none of the three, nor the image repository, remains. (The emulator leaves the ECS
    cluster of a deleted stack behind; CloudFormation deletes it.)"""
    gone = deploy_all("orchgone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deleted = destroy(gone.naming, empty_buckets=True, poll_seconds=0.05)

    assert deleted == [gone.naming.stack(p) for p in ("orchestration", "analytics", "streaming")]
    live = boto3.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"]
    )["StackSummaries"]
    assert not {s["StackName"] for s in live} & set(deleted)
    repositories = boto3.client("ecr").describe_repositories()["repositories"]
    assert gone.naming.image_repository not in {r["repositoryName"] for r in repositories}
