"""The stacks' output keys, named once.

The templates declare these outputs, the deployer passes some of them on as the
analytics stack's parameters, and the pipeline's settings loader and the local
cloud read them. Every reader asks for a member here, never a string literal.
"""

from __future__ import annotations

from enum import StrEnum


class StreamingOutput(StrEnum):
    """Outputs of the streaming stack."""

    TABLE_NAME = "TableName"
    TABLE_ARN = "TableArn"
    STREAM_NAME = "StreamName"
    STREAM_ARN = "StreamArn"
    FUNCTION_NAME = "FunctionName"
    FUNCTION_ARN = "FunctionArn"
    QUARANTINE_BUCKET_NAME = "QuarantineBucketName"
    QUARANTINE_PREFIX = "QuarantinePrefix"
    RULE_ERRORS_PREFIX = "RuleErrorsPrefix"
    ACCESS_LOG_BUCKET_NAME = "AccessLogBucketName"
    ON_FAILURE_QUEUE_URL = "OnFailureQueueUrl"
    ON_FAILURE_QUEUE_ARN = "OnFailureQueueArn"
    TOPIC_RULE_NAME = "TopicRuleName"
    SENSOR_TOPIC = "SensorTopic"
    DEVICE_POLICY_NAME = "DevicePolicyName"
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DATA_KEY_ARN = "DataKeyArn"
    ALERT_TOPIC_ARN = "AlertTopicArn"
    ALERT_BUS_NAME = "AlertBusName"
    ALERT_BUS_ARN = "AlertBusArn"
    ALERT_STATE_TABLE_NAME = "AlertStateTableName"
    ALERT_DEAD_LETTER_QUEUE_URL = "AlertDeadLetterQueueUrl"
    ALERT_NOTIFIER_FAILURE_QUEUE_URL = "AlertNotifierFailureQueueUrl"
    SILENCE_CHECK_FUNCTION_NAME = "SilenceCheckFunctionName"


class AnalyticsOutput(StrEnum):
    """Outputs of the analytics stack (`Redshift*` read `not-deployed` without a warehouse)."""

    LAKE_BUCKET_NAME = "LakeBucketName"
    EXPORTS_PREFIX = "ExportsPrefix"
    LAKE_PREFIX = "LakePrefix"
    LAKE_KEY_ARN = "LakeKeyArn"
    GLUE_DATABASE_NAME = "GlueDatabaseName"
    CRAWLER_NAME = "CrawlerName"
    REDSHIFT_DATABASE_NAME = "RedshiftDatabaseName"
    REDSHIFT_COPY_ROLE_ARN = "RedshiftCopyRoleArn"
    ORCHESTRATOR_ROLE_ARN = "OrchestratorRoleArn"
    REDSHIFT_CLUSTER_IDENTIFIER = "RedshiftClusterIdentifier"
    REDSHIFT_ENDPOINT_ADDRESS = "RedshiftEndpointAddress"
    REDSHIFT_PORT = "RedshiftPort"
    REDSHIFT_SECRET_ARN = "RedshiftSecretArn"
    #: The first of the cluster's security groups, which the orchestrator's tasks are let in by.
    WAREHOUSE_SECURITY_GROUP_ID = "WarehouseSecurityGroupId"


class OrchestrationOutput(StrEnum):
    """Outputs of the orchestration stack (Dagster on ECS)."""

    CLUSTER_NAME = "ClusterName"
    CLUSTER_ARN = "ClusterArn"
    WEBSERVER_SERVICE_NAME = "WebserverServiceName"
    DAEMON_SERVICE_NAME = "DaemonServiceName"
    RUN_TASK_DEFINITION_ARN = "RunTaskDefinitionArn"
    IMAGE_REPOSITORY_URI = "ImageRepositoryUri"
    IMAGE_BUILD_PROJECT_NAME = "ImageBuildProjectName"
    IMAGE_TAG = "ImageTag"
    DATABASE_ENDPOINT_ADDRESS = "DatabaseEndpointAddress"
    DATABASE_SECRET_ARN = "DatabaseSecretArn"
    LOG_GROUP_NAME = "LogGroupName"
    TASK_SECURITY_GROUP_ID = "TaskSecurityGroupId"
