"""The orchestration stack's template: Dagster on ECS Fargate, private, least-privilege."""

from __future__ import annotations

from cloudformation.dagster_tasks import (
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
    HOURLY_RUN,
    RUN_CONTAINER,
    TaskEnvironment,
)
from tests.cloudformation.conftest import one, resources_of_type

SECRET = {"Fn::GetAtt": ["DagsterDatabase", "MasterUserSecret.SecretArn"]}
ECS_TASKS = "ecs-tasks.amazonaws.com"


def _containers(template: dict) -> dict[str, dict]:
    """Every container definition, by task definition."""
    return {
        logical_id: container
        for logical_id, task in resources_of_type(template, "AWS::ECS::TaskDefinition").items()
        for container in task["Properties"]["ContainerDefinitions"]
    }


def _statements(template: dict, role: str) -> list[dict]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def test_tasks_and_database_live_in_the_given_private_subnets_without_a_public_ip(orchestration):
    """GIVEN the services and the database THEN they use the SubnetIds parameter, tasks get no
    public IP and the database is not publicly accessible."""
    services = resources_of_type(orchestration, "AWS::ECS::Service")
    assert set(services) == {"WebserverService", "DaemonService"}
    for service in services.values():
        network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert network["Subnets"] == {"Ref": "SubnetIds"}
    database = one(orchestration, "AWS::RDS::DBInstance")["Properties"]
    assert database["PubliclyAccessible"] is False
    subnets = one(orchestration, "AWS::RDS::DBSubnetGroup")["Properties"]
    assert subnets["SubnetIds"] == {"Ref": "SubnetIds"}


def test_nothing_is_let_in_from_anywhere_but_the_tasks(templates):
    """GIVEN every security group and ingress rule of every stack THEN none admits 0.0.0.0/0
    or ::/0; the tasks' group admits nothing; the database admits only the tasks, on
    PostgreSQL's port."""
    for template in templates.values():
        groups = resources_of_type(template, "AWS::EC2::SecurityGroup")
        rules = [
            *(r for g in groups.values() for r in g["Properties"].get("SecurityGroupIngress", [])),
            *(
                r["Properties"]
                for r in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values()
            ),
        ]
        for rule in rules:
            assert rule.get("CidrIp") != "0.0.0.0/0" and rule.get("CidrIpv6") != "::/0", rule
    orchestration = templates["orchestration"]
    tasks = orchestration["Resources"]["TaskSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in tasks
    (database_rule,) = orchestration["Resources"]["DatabaseSecurityGroup"]["Properties"][
        "SecurityGroupIngress"
    ]
    assert database_rule["SourceSecurityGroupId"] == {"Ref": "TaskSecurityGroup"}
    assert (database_rule["FromPort"], database_rule["ToPort"]) == (5432, 5432)
    warehouse = orchestration["Resources"]["WarehouseFromTasks"]
    assert warehouse["Condition"] == "HasWarehouse"
    assert warehouse["Properties"]["FromPort"] == 5439


def test_the_database_is_encrypted_backed_up_and_its_password_managed_by_rds(orchestration):
    """GIVEN the database THEN storage and its secret are encrypted with the stack's key,
    backups are kept a week, a final snapshot is taken on delete, TLS is required, and no
    password is in the template."""
    database = one(orchestration, "AWS::RDS::DBInstance")
    props = database["Properties"]
    key = {"Fn::GetAtt": ["OrchestrationKey", "Arn"]}
    assert props["StorageEncrypted"] is True and props["KmsKeyId"] == key
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": key}
    assert "MasterUserPassword" not in props
    assert props["BackupRetentionPeriod"] >= 7
    assert database["DeletionPolicy"] == "Snapshot"
    settings = one(orchestration, "AWS::RDS::DBParameterGroup")["Properties"]["Parameters"]
    assert settings["rds.force_ssl"] == "1"


def test_every_task_gets_the_password_as_an_ecs_secret_never_as_a_value(orchestration):
    """GIVEN every container THEN the database credentials come from the managed secret as
    ECS secrets, and no environment variable carries a password."""
    for logical_id, container in _containers(orchestration).items():
        secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        assert secrets[TaskEnvironment.PG_PASSWORD] == {"Fn::Join": ["", [SECRET, ":password::"]]}
        assert secrets[TaskEnvironment.PG_USERNAME] == {"Fn::Join": ["", [SECRET, ":username::"]]}
        names = {v["Name"] for v in container["Environment"]}
        assert not any("PASSWORD" in name for name in names), logical_id
        assert "EntryPoint" not in container, logical_id


def test_exactly_one_daemon_also_while_a_deploy_replaces_it(orchestration):
    """GIVEN the daemon's service THEN one task (once an image exists), and a deploy stops the
    old daemon before starting the new one; the webserver keeps serving during a deploy."""
    daemon = orchestration["Resources"]["DaemonService"]["Properties"]
    assert daemon["DesiredCount"] == {"Fn::If": ["HasImage", 1, 0]}
    deployment = daemon["DeploymentConfiguration"]
    assert (deployment["MaximumPercent"], deployment["MinimumHealthyPercent"]) == (100, 0)
    containers = _containers(orchestration)
    assert containers["DaemonTaskDefinition"]["Command"][:2] == ["dagster-daemon", "run"]
    assert containers["DaemonTaskDefinition"]["HealthCheck"]["Command"][1:] == [
        "dagster-daemon",
        "liveness-check",
    ]
    webserver = orchestration["Resources"]["WebserverService"]["Properties"]
    assert webserver["EnableExecuteCommand"] is True
    assert daemon["EnableExecuteCommand"] is False


def test_runs_start_from_the_run_task_definition_as_the_orchestrator_role(orchestration):
    """GIVEN the run task definition THEN its role is the analytics stack's orchestrator role
    (a parameter), its size the hourly run's, and no policy of this stack widens that role."""
    run = orchestration["Resources"]["RunTaskDefinition"]["Properties"]
    assert run["TaskRoleArn"] == {"Ref": "OrchestratorRoleArn"}
    assert (run["Cpu"], run["Memory"]) == (str(HOURLY_RUN.cpu), str(HOURLY_RUN.memory))
    (container,) = run["ContainerDefinitions"]
    assert container["Name"] == RUN_CONTAINER and "Command" not in container
    assert not resources_of_type(orchestration, "AWS::IAM::Policy")
    assert not resources_of_type(orchestration, "AWS::IAM::ManagedPolicy")


def test_ecs_tasks_may_assume_the_orchestrator_role_of_this_account_only(analytics):
    """GIVEN the analytics stack's orchestrator role THEN ECS tasks of this account may assume
    it (the run tasks), beside the principal it had."""
    trust = analytics["Resources"]["OrchestratorRole"]["Properties"]["AssumeRolePolicyDocument"]
    (ecs,) = [s for s in trust["Statement"] if s["Principal"] == {"Service": ECS_TASKS}]
    assert ecs["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_daemon_passes_only_the_run_task_roles_and_runs_tasks_of_its_cluster(orchestration):
    """GIVEN the roles THEN only the daemon may pass roles: the execution role and the
    orchestrator role, to ECS tasks only; it runs only the run task definition's family, and
    starts, watches and stops tasks of its own cluster only."""
    passing = {
        logical_id: s
        for logical_id in resources_of_type(orchestration, "AWS::IAM::Role")
        for s in _statements(orchestration, logical_id)
        if "iam:PassRole" in s["Action"]
    }
    assert set(passing) == {"DaemonRole"}
    statement = passing["DaemonRole"]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
        {"Ref": "OrchestratorRoleArn"},
    ]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": ECS_TASKS}}
    daemon = {s["Sid"]: s for s in _statements(orchestration, "DaemonRole")}
    (run_family,) = daemon["StartRunTasks"]["Resource"]
    assert "task-definition/ecstask-dev-apse2-run-01:*" in run_family["Fn::Sub"]
    for sid in ("StartRunTasks", "WatchAndStopRunTasks"):
        assert "ecs:cluster" in daemon[sid]["Condition"]["ArnEquals"], sid
    (tasks,) = daemon["WatchAndStopRunTasks"]["Resource"]
    assert "task/ecs-dev-apse2-dagster-01/*" in tasks["Fn::Sub"]


def test_logs_are_encrypted_and_kept_for_the_retention_given(orchestration):
    """GIVEN every log group THEN encrypted with the stack's key and kept LogRetentionDays; every
    container logs to the tasks' group through the awslogs driver (which the run launcher
    reads a failed run's last lines from)."""
    groups = resources_of_type(orchestration, "AWS::Logs::LogGroup")
    assert set(groups) == {"TaskLogGroup", "ImageBuildLogGroup"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["OrchestrationKey", "Arn"]}
    for container in _containers(orchestration).values():
        logging = container["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        assert logging["Options"]["awslogs-group"] == {"Ref": "TaskLogGroup"}


def test_the_cluster_offers_fargate_and_fargate_spot(orchestration):
    """GIVEN the cluster THEN both Fargate capacity providers, on-demand by default."""
    cluster = one(orchestration, "AWS::ECS::Cluster")["Properties"]
    assert cluster["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert cluster["DefaultCapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE", "Weight": 1}
    ]


def test_a_silent_daemon_alarms_the_streaming_stacks_alarm_topic(orchestration):
    """GIVEN the heartbeat alarm THEN missing heartbeats breach, and it notifies the alarm topic
    the deployer passes from the streaming stack."""
    alarm = one(orchestration, "AWS::CloudWatch::Alarm")["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (HEARTBEAT_NAMESPACE, HEARTBEAT_METRIC)
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]


def test_the_image_is_built_from_the_uploaded_source_into_an_immutable_repository(
    orchestration,
):
    """GIVEN the build project and the repository THEN the build reads the artifact bucket's
    image/ prefix (and only that), pushes to the stack's repository, whose tags never move
    and whose images are scanned on push."""
    project = one(orchestration, "AWS::CodeBuild::Project")["Properties"]
    assert project["Source"]["Type"] == "S3"
    assert project["Source"]["Location"]["Fn::Sub"].endswith("-${AWS::AccountId}/image/")
    repository = one(orchestration, "AWS::ECR::Repository")["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    build = {s["Sid"]: s for s in _statements(orchestration, "ImageBuildRole")}
    (source,) = build["ReadTheSourceArchives"]["Resource"]
    assert source["Fn::Sub"].endswith("-${AWS::AccountId}/image/*")
    assert build["PushTheImage"]["Resource"] == [{"Fn::GetAtt": ["ImageRepository", "Arn"]}]


def test_the_runs_step_output_expires_from_the_lake_bucket_and_nothing_else_does(
    analytics, orchestration
):
    """GIVEN the lake bucket the runs write their step output to THEN a lifecycle rule expires
    exactly the compute-log prefix Dagster is configured with, after as many days as the
    tasks' logs are kept by default; the lake, the exports and the pipeline's records stay."""
    from platform_tools.dagster_instance import aws_instance

    prefix = aws_instance()["compute_logs"]["config"]["prefix"] + "/"
    lake = resources_of_type(analytics, "AWS::S3::Bucket")["LakeBucket"]
    rules = lake["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if "ExpirationInDays" in r]
    assert [(r.get("Prefix"), r["Status"]) for r in expiring] == [(prefix, "Enabled")]
    default_retention = orchestration["Parameters"]["LogRetentionDays"]["Default"]
    assert expiring[0]["ExpirationInDays"] == default_retention
