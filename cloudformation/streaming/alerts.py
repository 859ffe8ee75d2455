"""The alert path: per-device state, the event bus, the rule to the alert topic (with a
dead-letter queue), the scheduled silence check, and the alert notifier.

The stream processor and the silence check write each alert state change to the
device's state item together with its events (an outbox), in one write, so a change
is never stored without its events nor sent without being stored. The state table's
stream feeds those writes to the alert notifier, which puts the events on the bus;
the rule sends them to the topic as a JSON message whose first field is a sentence
for a person and whose second is the event's detail; users add their own rules to
the bus. A schedule runs the silence check every minute. Events the rule cannot
deliver, after EventBridge's retries, go to the dead-letter queue, and stream batches
the notifier gives up on go to its on-failure queue; both have alarms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from awacs import dynamodb as ddb
from awacs import events as eventsa
from awacs import sns as snsa
from awacs import sqs as sqsa
from awacs.aws import ArnEquals, Condition, Principal, Statement
from troposphere import AWSHelperFn, GetAtt, Ref, Template
from troposphere.awslambda import (
    DestinationConfig,
    EventSourceMapping,
    Filter,
    FilterCriteria,
    Function,
    OnFailure,
    Permission,
)
from troposphere.cloudwatch import MetricDimension
from troposphere.dynamodb import (
    AttributeDefinition,
    KeySchema,
    PointInTimeRecoverySpecification,
    SSESpecification,
    StreamSpecification,
    Table,
    TimeToLiveSpecification,
)
from troposphere.events import (
    DeadLetterConfig,
    EventBus,
    InputTransformer,
    RetryPolicy,
    Rule,
    Target,
)
from troposphere.sns import Topic, TopicPolicy
from troposphere.sqs import Queue, QueuePolicy

from cloudformation.iam import allow, document, service_role
from cloudformation.naming import Naming
from cloudformation.parameters import skip
from cloudformation.streaming.alarms import ITERATOR_AGE_METRIC, LAMBDA_NAMESPACE, AlarmSpec
from cloudformation.streaming.function_parts import (
    add_log_group,
    add_on_failure_queue,
    function_basics,
    package_function,
)
from cloudformation.streaming.parameters import AlertParameters, StreamingParameters
from stream_processor import contract

#: The silence check's handler, named as a string like the stream processor's.
SILENCE_CHECK_HANDLER = "stream_processor.silence_check.handler"
#: Every minute: silence is noticed within a minute or two of the window ending.
SILENCE_SCHEDULE = "rate(1 minute)"
#: A check runs in well under a second per thousand devices; it must end before the next.
SILENCE_CHECK_TIMEOUT_SECONDS = 50
SILENCE_CHECK_MEMORY_MB = 256
#: EventBridge's own limits for a target: keep trying for a day, then the dead-letter queue.
DELIVERY_RETRY_ATTEMPTS = 185
DELIVERY_MAX_EVENT_AGE_SECONDS = 86400
#: A missed silence check is made up by the next one a minute later: no retries.
SCHEDULE_MAX_EVENT_AGE_SECONDS = 60
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
DEAD_LETTER_KEY_REUSE_SECONDS = 300

#: The alert notifier's handler: it puts the events of the alert state's outbox on the bus.
ALERT_NOTIFIER_HANDLER = "stream_processor.alert_notifier.handler"
#: A batch is at most a few PutEvents calls; a minute leaves room for EventBridge's
#: throttling and the client's retries before Lambda retries the whole batch.
ALERT_NOTIFIER_TIMEOUT_SECONDS = 60
#: The notifier only relays JSON it is given: the silence check's size is plenty.
ALERT_NOTIFIER_MEMORY_MB = 256
#: Up to 100 state writes per invocation, gathered for at most a second: notifications go
#: out within about a second of the write, and a burst of alerts costs few invocations.
ALERT_NOTIFIER_BATCH_SIZE = 100
ALERT_NOTIFIER_BATCHING_WINDOW_SECONDS = 1
#: A failing batch holds back the later writes of its shard (each device's events stay in
#: order), so retries are bounded: ten ride out a throttled or briefly unavailable bus,
#: and then the batch's position goes to the on-failure queue and its alarm, rather than
#: the shard's alerts waiting for as long as the stream keeps records (24 hours).
ALERT_NOTIFIER_RETRY_ATTEMPTS = 10
#: Normally a write reaches the notifier within a couple of seconds (the batching window
#: and polling); a minute behind means alerts are late by as long as the silence check's
#: own period, so the notifier is failing, retrying or throttled.
ALERT_NOTIFIER_ITERATOR_AGE_MS = 60_000

#: The topic's message: the sentence first, for an e-mail reader, then the detail as JSON.
NOTIFICATION_PATHS = {
    contract.NOTIFICATION_MESSAGE: "$.detail.message",
    contract.NOTIFICATION_ALERT: "$.detail",
}
NOTIFICATION_TEMPLATE = (
    "{\n"
    f'  "{contract.NOTIFICATION_MESSAGE}": <{contract.NOTIFICATION_MESSAGE}>,\n'
    f'  "{contract.NOTIFICATION_ALERT}": <{contract.NOTIFICATION_ALERT}>\n'
    "}"
)


@dataclass(frozen=True)
class AlertState:
    """Where alert changes go: the state table (with their events in its outbox) and the
    bus the notifier puts those events on."""

    table: Table
    bus: EventBus


@dataclass(frozen=True)
class AlertNotifier:
    """The function relaying the outbox to the bus, and the queue of batches it gave up on."""

    function: Function
    on_failure_queue: Queue


@dataclass(frozen=True)
class AlertPath:
    """The alert path's resources the alarms and outputs name."""

    state: AlertState
    topic: Topic
    rule: Rule
    dead_letters: Queue
    silence_check: Function
    notifier: AlertNotifier


def add_alert_state(t: Template, naming: Naming, key_arn: AWSHelperFn) -> AlertState:
    """Add the per-device state table (TTL, PITR, the data key, a stream of its writes for
    the notifier) and the alert bus."""
    table = t.add_resource(
        Table(
            "AlertStateTable",
            TableName=naming.alert_state_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                AttributeDefinition(AttributeName=contract.DEVICE_ID, AttributeType="S"),
                AttributeDefinition(AttributeName=contract.STATE_KIND, AttributeType="S"),
            ],
            KeySchema=[
                KeySchema(AttributeName=contract.DEVICE_ID, KeyType="HASH"),
                KeySchema(AttributeName=contract.STATE_KIND, KeyType="RANGE"),
            ],
            PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            SSESpecification=SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key_arn
            ),
            TimeToLiveSpecification=TimeToLiveSpecification(
                AttributeName=contract.EXPIRES_AT, Enabled=True
            ),
            # The notifier reads the outbox from the item as written; the old image would
            # only double each record's size.
            StreamSpecification=StreamSpecification(StreamViewType="NEW_IMAGE"),
        )
    )
    # The bus is named by GetAtt Name rather than Ref: both give the name on AWS, and the
    # emulator's CloudFormation resolves only the former.
    bus = t.add_resource(
        EventBus(
            "AlertBus",
            Name=naming.alert_bus,
            Description="Alert state changes of the sensor fleet; add rules for your own targets.",
        )
    )
    return AlertState(table=table, bus=bus)


def alert_environment(params: AlertParameters, state: AlertState) -> dict[str, AWSHelperFn]:
    """The alert settings of the functions' environment (`stream_processor.config` reads them)."""
    return {
        contract.ENV_ALERT_STATE_TABLE: Ref(state.table),
        contract.ENV_ALERT_BUS_NAME: GetAtt(state.bus, "Name"),
        contract.ENV_SILENCE_WINDOW_SECONDS: Ref(params.silence_window_seconds),
        contract.ENV_HIGH_TEMPERATURE_CLEAR_MARGIN_C: Ref(params.high_temperature_clear_margin_c),
        contract.ENV_LOW_HUMIDITY_CLEAR_MARGIN_PCT: Ref(params.low_humidity_clear_margin_pct),
        contract.ENV_ALERT_REMINDER_SECONDS: Ref(params.reminder_seconds),
        contract.ENV_ALERT_STATE_TTL_DAYS: Ref(params.state_ttl_days),
    }


def processor_alert_statements(state: AlertState, readings: Table) -> list[Statement]:
    """What the stream processor needs for alerts: its state (the devices' states, the
    shards' leases and `seen` items) and the newest readings (the events go out through
    the state's outbox, so it never puts them on the bus itself)."""
    return [
        allow(
            [ddb.BatchGetItem, ddb.GetItem, ddb.PutItem, ddb.Query, ddb.DeleteItem],
            [GetAtt(state.table, "Arn")],
            sid="KeepAlertState",
        ),
        allow([ddb.Query], [GetAtt(readings, "Arn")], sid="FindTheNewestReadings"),
    ]


def add_alert_delivery(
    t: Template, naming: Naming, state: AlertState, key_arn: AWSHelperFn
) -> tuple[Topic, Rule, Queue]:
    """Add the encrypted topic, the rule sending the bus's alert events to it, and the
    encrypted dead-letter queue of events it could not deliver."""
    topic = t.add_resource(
        Topic(
            "AlertTopic",
            TopicName=naming.alert_topic,
            DisplayName="IoT alerts",
            KmsMasterKeyId=key_arn,
        )
    )
    dead_letters = t.add_resource(
        Queue(
            "AlertDeadLetterQueue",
            QueueName=naming.alert_dead_letter_queue,
            KmsMasterKeyId=key_arn,
            KmsDataKeyReusePeriodSeconds=DEAD_LETTER_KEY_REUSE_SECONDS,
            MessageRetentionPeriod=DEAD_LETTER_RETENTION_SECONDS,
        )
    )
    rule = t.add_resource(
        Rule(
            "AlertNotificationRule",
            Name=naming.alert_rule,
            Description="Sends every alert state change to the alert topic.",
            EventBusName=GetAtt(state.bus, "Name"),
            EventPattern={"source": [contract.ALERT_EVENT_SOURCE]},
            State="ENABLED",
            Targets=[
                Target(
                    Id="AlertTopic",
                    Arn=Ref(topic),
                    InputTransformer=InputTransformer(
                        InputPathsMap=NOTIFICATION_PATHS, InputTemplate=NOTIFICATION_TEMPLATE
                    ),
                    RetryPolicy=RetryPolicy(
                        MaximumRetryAttempts=DELIVERY_RETRY_ATTEMPTS,
                        MaximumEventAgeInSeconds=DELIVERY_MAX_EVENT_AGE_SECONDS,
                    ),
                    DeadLetterConfig=DeadLetterConfig(Arn=GetAtt(dead_letters, "Arn")),
                )
            ],
        )
    )
    from_the_rule = Condition(ArnEquals("aws:SourceArn", GetAtt(rule, "Arn")))
    events = Principal("Service", "events.amazonaws.com")
    t.add_resource(
        TopicPolicy(
            "AlertTopicPolicy",
            Topics=[Ref(topic)],
            PolicyDocument=document(
                [
                    Statement(
                        Sid="TheAlertRulePublishes",
                        Effect="Allow",
                        Principal=events,
                        Action=[snsa.Publish],
                        Resource=[Ref(topic)],
                        Condition=from_the_rule,
                    )
                ]
            ),
        )
    )
    t.add_resource(
        QueuePolicy(
            "AlertDeadLetterQueuePolicy",
            Queues=[Ref(dead_letters)],
            PolicyDocument=document(
                [
                    Statement(
                        Sid="TheAlertRuleDeadLetters",
                        Effect="Allow",
                        Principal=events,
                        Action=[sqsa.SendMessage],
                        Resource=[GetAtt(dead_letters, "Arn")],
                        Condition=from_the_rule,
                    )
                ]
            ),
        )
    )
    return topic, rule, dead_letters


def add_silence_check(
    t: Template,
    naming: Naming,
    params: StreamingParameters,
    *,
    state: AlertState,
    readings: Table,
    environment: dict[str, AWSHelperFn],
    key_arn: AWSHelperFn,
) -> Function:
    """Add the silence check function and the schedule that runs it every minute."""
    log_group = add_log_group(
        t, "SilenceCheckLogGroup", naming.silence_check_log_group, params, key_arn
    )
    role = t.add_resource(
        service_role(
            "SilenceCheckRole",
            role_name=naming.name("role", "silencecheck"),
            service="lambda.amazonaws.com",
            policy_name="silence-check",
            description="Runs the silence check: reads and marks the alert state (with the "
            "events in its outbox).",
            statements=[
                allow(
                    [ddb.Scan, ddb.GetItem, ddb.PutItem],
                    [GetAtt(state.table, "Arn")],
                    sid="ReadAndMarkAlertState",
                ),
                allow([ddb.Query], [GetAtt(readings, "Arn")], sid="FindTheNewestReadings"),
                *function_basics(log_group, key_arn),
            ],
        )
    )
    function = t.add_resource(
        package_function(
            "SilenceCheckFunction",
            name=naming.silence_check_function,
            description="Announces devices that sent nothing for the silence window.",
            handler=SILENCE_CHECK_HANDLER,
            role=role,
            log_group=log_group,
            params=params,
            environment=environment,
            key_arn=key_arn,
            MemorySize=SILENCE_CHECK_MEMORY_MB,
            Timeout=SILENCE_CHECK_TIMEOUT_SECONDS,
            checkov_skips=[
                skip(
                    "CKV_AWS_116",
                    "Invoked by a schedule every minute; each run checks every device, "
                    "so a failed run's work is redone by the next one, and its errors "
                    "raise the SilenceCheckErrors alarm. A DLQ would only hold stale "
                    "schedule events.",
                ),
                skip(
                    "CKV_AWS_117",
                    "Talks only to AWS APIs (DynamoDB) over TLS with IAM auth; no "
                    "private network resources, so no VPC attachment.",
                ),
                skip(
                    "CKV_AWS_115",
                    "One schedule event a minute; overlapping runs are safe (every mark "
                    "is a conditional write), and reserving concurrency would fail in "
                    "accounts at the minimum unreserved concurrency.",
                ),
            ],
        )
    )
    schedule = t.add_resource(
        Rule(
            "SilenceCheckSchedule",
            Name=naming.silence_schedule,
            Description="Runs the silence check every minute.",
            ScheduleExpression=SILENCE_SCHEDULE,
            State="ENABLED",
            Targets=[
                Target(
                    Id="SilenceCheck",
                    Arn=GetAtt(function, "Arn"),
                    RetryPolicy=RetryPolicy(
                        MaximumRetryAttempts=0,
                        MaximumEventAgeInSeconds=SCHEDULE_MAX_EVENT_AGE_SECONDS,
                    ),
                )
            ],
        )
    )
    t.add_resource(
        Permission(
            "SilenceCheckInvokedBySchedule",
            FunctionName=Ref(function),
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(schedule, "Arn"),
        )
    )
    return function


def add_alert_notifier(
    t: Template,
    naming: Naming,
    params: StreamingParameters,
    *,
    state: AlertState,
    environment: dict[str, AWSHelperFn],
    key_arn: AWSHelperFn,
) -> AlertNotifier:
    """Add the alert notifier: the function putting the events of the alert state's outbox on
    the bus, the mapping feeding it the state table's stream, and the encrypted queue of the
    batches it gave up on."""
    on_failure = add_on_failure_queue(
        t, "AlertNotifierFailureQueue", naming.alert_notifier_failure_queue, key_arn
    )
    log_group = add_log_group(
        t, "AlertNotifierLogGroup", naming.alert_notifier_log_group, params, key_arn
    )
    role = t.add_resource(
        service_role(
            "AlertNotifierRole",
            role_name=naming.name("role", "alertnotifier"),
            service="lambda.amazonaws.com",
            policy_name="alert-notifier",
            description="Runs the alert notifier: reads the alert state's stream, puts its "
            "events on the alert bus.",
            statements=[
                allow(
                    [
                        ddb.DescribeStream,
                        ddb.GetRecords,
                        ddb.GetShardIterator,
                        ddb.ListStreams,
                    ],
                    [GetAtt(state.table, "StreamArn")],
                    sid="ReadTheAlertStateStream",
                ),
                allow([eventsa.PutEvents], [GetAtt(state.bus, "Arn")], sid="SendAlertEvents"),
                allow([sqsa.SendMessage], [GetAtt(on_failure, "Arn")], sid="ReportFailedBatches"),
                *function_basics(log_group, key_arn),
            ],
        )
    )
    function = t.add_resource(
        package_function(
            "AlertNotifierFunction",
            name=naming.alert_notifier_function,
            description="Puts the alert events written to the alert state on the alert bus.",
            handler=ALERT_NOTIFIER_HANDLER,
            role=role,
            log_group=log_group,
            params=params,
            environment=environment,
            key_arn=key_arn,
            MemorySize=ALERT_NOTIFIER_MEMORY_MB,
            Timeout=ALERT_NOTIFIER_TIMEOUT_SECONDS,
            checkov_skips=[
                skip(
                    "CKV_AWS_116",
                    "Invoked only by the state table's event source mapping, never "
                    "asynchronously; batches it gives up on go to the mapping's "
                    "on-failure SQS destination, so a function DLQ would never "
                    "receive anything.",
                ),
                skip(
                    "CKV_AWS_117",
                    "Talks only to AWS APIs (DynamoDB Streams, EventBridge, SQS) over "
                    "TLS with IAM auth; no private network resources, so no VPC "
                    "attachment.",
                ),
                skip(
                    "CKV_AWS_115",
                    "One batch per stream shard in flight already bounds concurrency, "
                    "and reserving concurrency would fail in accounts at the minimum "
                    "unreserved concurrency.",
                ),
            ],
        )
    )
    t.add_resource(
        EventSourceMapping(
            "AlertNotifierEventSourceMapping",
            EventSourceArn=GetAtt(state.table, "StreamArn"),
            FunctionName=Ref(function),
            Enabled=True,
            # From the oldest record: writes made before the mapping was ready still notify.
            StartingPosition="TRIM_HORIZON",
            BatchSize=ALERT_NOTIFIER_BATCH_SIZE,
            MaximumBatchingWindowInSeconds=ALERT_NOTIFIER_BATCHING_WINDOW_SECONDS,
            # Only writes carrying events invoke the function; the others (marks of when a
            # device was last seen, the shard lease, TTL deletions) never cost an invocation.
            FilterCriteria=FilterCriteria(
                Filters=[Filter(Pattern=json.dumps(contract.ALERT_OUTBOX_FILTER))]
            ),
            # The function names the records it could not send; Lambda retries from the
            # first of them, and halves a batch that fails as a whole to isolate a bad record.
            FunctionResponseTypes=["ReportBatchItemFailures"],
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=ALERT_NOTIFIER_RETRY_ATTEMPTS,
            DestinationConfig=DestinationConfig(
                OnFailure=OnFailure(Destination=GetAtt(on_failure, "Arn"))
            ),
        )
    )
    return AlertNotifier(function=function, on_failure_queue=on_failure)


def alert_alarms(path: AlertPath) -> list[AlarmSpec]:
    """The alarms of the alert path: undelivered events, a failing silence check, and a
    failing, late or giving-up notifier."""
    notifier = [MetricDimension(Name="FunctionName", Value=Ref(path.notifier.function))]
    return [
        AlarmSpec(
            "AlertDeadLetters",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            0,
            [MetricDimension(Name="QueueName", Value=GetAtt(path.dead_letters, "QueueName"))],
            "Alert events could not be delivered to the alert topic; they are in the queue.",
        ),
        AlarmSpec(
            "SilenceCheckErrors",
            "AWS/Lambda",
            "Errors",
            "Sum",
            0,
            [MetricDimension(Name="FunctionName", Value=Ref(path.silence_check))],
            "The silence check failed: silent devices may go unannounced.",
        ),
        AlarmSpec(
            "AlertNotifierErrors",
            LAMBDA_NAMESPACE,
            "Errors",
            "Sum",
            0,
            notifier,
            "The alert notifier failed: alert events are late while their batches are retried.",
        ),
        AlarmSpec(
            "AlertNotifierIteratorAge",
            LAMBDA_NAMESPACE,
            ITERATOR_AGE_METRIC,
            "Maximum",
            ALERT_NOTIFIER_ITERATOR_AGE_MS,
            notifier,
            "The alert notifier is falling behind the alert state: notifications are late.",
        ),
        AlarmSpec(
            "AlertNotifierFailures",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            0,
            [
                MetricDimension(
                    Name="QueueName", Value=GetAtt(path.notifier.on_failure_queue, "QueueName")
                )
            ],
            "Alert events were given up on; the batches' positions are in the queue.",
        ),
    ]
