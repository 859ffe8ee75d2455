"""The streaming data key: one customer managed key for stream, table, queue, topic, logs."""

from __future__ import annotations

from troposphere import Template
from troposphere.kms import Key

from cloudformation.kms import USE_ACTIONS, customer_key, logs_statement, service_statement
from cloudformation.naming import Naming


def add_data_key(t: Template, naming: Naming) -> Key:
    """Add the rotating data key (and its alias) that every streaming resource encrypts with."""
    return customer_key(
        t,
        "DataKey",
        alias=naming.name("kms", "iotdata"),
        description=f"Encrypts the {naming.env} streaming data: stream, table, queue, topic, logs.",
        service_statements=[
            logs_statement("CloudWatchLogsEncryptsTheFunctionLogGroup", naming.function_log_group),
            logs_statement(
                "CloudWatchLogsEncryptsTheSilenceCheckLogGroup", naming.silence_check_log_group
            ),
            logs_statement(
                "CloudWatchLogsEncryptsTheAlertNotifierLogGroup", naming.alert_notifier_log_group
            ),
            # Alarms publish to the encrypted topic as the CloudWatch service.
            service_statement(
                "CloudWatchAlarmsPublishToTheEncryptedTopic",
                "cloudwatch.amazonaws.com",
                USE_ACTIONS,
            ),
            # The alert rule delivers to the encrypted topic and dead-letter queue as EventBridge.
            service_statement(
                "EventBridgeDeliversToTheEncryptedTopicAndQueue",
                "events.amazonaws.com",
                USE_ACTIONS,
            ),
        ],
    )
