"""The alarms on the stream processor and its on-failure queue, and the topic they notify."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import AWSHelperFn, GetAtt, Parameter, Ref, Template
from troposphere.awslambda import Function
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.sns import Topic
from troposphere.sqs import Queue

from cloudformation.naming import Naming

#: Lambda's metrics, and the one that says how far behind its stream the function is: the
#: age of the last record of each batch a stream mapping sends, in milliseconds.
LAMBDA_NAMESPACE = "AWS/Lambda"
ITERATOR_AGE_METRIC = "IteratorAge"

ALARM_PERIOD_SECONDS = 60
#: An alarm fires when 3 of the last 5 periods breach: one slow minute is not an incident.
EVALUATION_PERIODS = 5
DATAPOINTS_TO_ALARM = 3


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: `metric` of `namespace` above `threshold` means `description`."""

    purpose: str
    namespace: str
    metric: str
    statistic: str
    threshold: AWSHelperFn | int
    dimensions: list[MetricDimension]
    description: str


def add_alarms(
    t: Template,
    naming: Naming,
    *,
    function: Function,
    on_failure_queue: Queue,
    iterator_age_ms: Parameter,
    key_arn: AWSHelperFn,
    more: Sequence[AlarmSpec] = (),
) -> Topic:
    """Add the encrypted alarm topic, the alarms on the stream processor (`function`) and its
    `on_failure_queue`, and `more`; return the topic."""
    topic = t.add_resource(
        Topic("AlarmTopic", TopicName=naming.alarm_topic, KmsMasterKeyId=key_arn)
    )
    function_dimension = [MetricDimension(Name="FunctionName", Value=Ref(function))]
    queue = [MetricDimension(Name="QueueName", Value=GetAtt(on_failure_queue, "QueueName"))]
    specs = [
        AlarmSpec(
            "IteratorAge",
            LAMBDA_NAMESPACE,
            ITERATOR_AGE_METRIC,
            "Maximum",
            Ref(iterator_age_ms),
            function_dimension,
            "Stream processing is falling behind.",
        ),
        AlarmSpec(
            "FunctionErrors",
            LAMBDA_NAMESPACE,
            "Errors",
            "Sum",
            0,
            function_dimension,
            "The stream processor raised errors (batches are being retried).",
        ),
        AlarmSpec(
            "FunctionThrottles",
            LAMBDA_NAMESPACE,
            "Throttles",
            "Sum",
            0,
            function_dimension,
            "The stream processor is being throttled.",
        ),
        AlarmSpec(
            "OnFailureQueueDepth",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            0,
            queue,
            "Batches were skipped after retries; their coordinates are in the queue.",
        ),
    ]
    for spec in [*specs, *more]:
        t.add_resource(_alarm(naming, spec, topic))
    return topic


def _alarm(naming: Naming, spec: AlarmSpec, topic: Topic) -> Alarm:
    """An alarm notifying `topic` (on alarm and on recovery) when `spec` breaches."""
    return Alarm(
        f"{spec.purpose}Alarm",
        AlarmName=naming.name("alarm", spec.purpose.lower()),
        AlarmDescription=spec.description,
        Namespace=spec.namespace,
        MetricName=spec.metric,
        Dimensions=spec.dimensions,
        Statistic=spec.statistic,
        Period=ALARM_PERIOD_SECONDS,
        EvaluationPeriods=EVALUATION_PERIODS,
        DatapointsToAlarm=DATAPOINTS_TO_ALARM,
        Threshold=spec.threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[Ref(topic)],
        OKActions=[Ref(topic)],
    )
