"""The daemon's heartbeat alarm: notifies the alarm topic when Dagster's daemon goes silent.

A sensor the daemon evaluates puts one datapoint a minute (`dagster_tasks.HEARTBEAT_*`).
Missing datapoints breach: a daemon that stopped, hangs or cannot load the code location
puts none. Failed runs and failed checks are notified by the sensors themselves.
"""

from __future__ import annotations

from troposphere import Ref, Template
from troposphere.cloudwatch import Alarm, MetricDimension

from cloudformation.dagster_tasks import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_INTERVAL_SECONDS,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
)
from cloudformation.naming import Naming
from cloudformation.orchestration.parameters import HAS_IMAGE, OrchestrationParameters

#: Ten silent minutes in a row: a deploy replaces the daemon (the old one stops, the new one
#: starts and loads the code location) in less; an hourly tick is still ahead.
SILENT_PERIODS = 10


def add_heartbeat_alarm(t: Template, naming: Naming, params: OrchestrationParameters) -> Alarm:
    """Add the alarm on the daemon's heartbeat (only once there is an image to run)."""
    return t.add_resource(
        Alarm(
            "DaemonHeartbeatAlarm",
            Condition=HAS_IMAGE,
            AlarmName=naming.name("alarm", "daemonheartbeat"),
            AlarmDescription="Dagster's daemon stopped heartbeating: schedules, sensors and "
            "run monitoring are not running.",
            Namespace=HEARTBEAT_NAMESPACE,
            MetricName=HEARTBEAT_METRIC,
            Dimensions=[MetricDimension(Name=HEARTBEAT_DIMENSION, Value=naming.env)],
            Statistic="SampleCount",
            Period=HEARTBEAT_INTERVAL_SECONDS,
            EvaluationPeriods=SILENT_PERIODS,
            DatapointsToAlarm=SILENT_PERIODS,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            TreatMissingData="breaching",
            AlarmActions=[Ref(params.stacks.alarm_topic_arn)],
            OKActions=[Ref(params.stacks.alarm_topic_arn)],
        )
    )
