"""The stream processor: the function, its role and log group, the event source mapping
reading the stream, and the on-failure queue of batches it gave up on.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import dynamodb as ddb
from awacs import kinesis as kin
from awacs import s3 as s3a
from awacs import sqs as sqsa
from troposphere import AWSHelperFn, GetAtt, If, NoValue, Ref, Template
from troposphere.awslambda import (
    DestinationConfig,
    EventSourceMapping,
    Function,
    OnFailure,
)
from troposphere.dynamodb import Table
from troposphere.kinesis import Stream
from troposphere.s3 import Bucket
from troposphere.sqs import Queue

from cloudformation.buckets import objects_under
from cloudformation.iam import allow, service_role
from cloudformation.naming import Naming
from cloudformation.parameters import skip
from cloudformation.streaming.alerts import (
    AlertState,
    alert_environment,
    processor_alert_statements,
)
from cloudformation.streaming.function_parts import (
    add_log_group,
    add_on_failure_queue,
    function_basics,
    package_function,
)
from cloudformation.streaming.parameters import (
    HAS_RESERVED_CONCURRENCY,
    ProcessorSettings,
    StreamingParameters,
)
from stream_processor import contract

#: The handler, named as a string: this package never imports the function code.
HANDLER = "stream_processor.handler.handler"


@dataclass(frozen=True)
class StreamProcessor:
    """The function and the queue of batches it gave up on, for the alarms and outputs."""

    function: Function
    on_failure_queue: Queue


def add_stream_processor(
    t: Template,
    naming: Naming,
    params: StreamingParameters,
    *,
    stream: Stream,
    table: Table,
    quarantine: Bucket,
    alerts: AlertState,
    key_arn: AWSHelperFn,
) -> StreamProcessor:
    """Add the function reading `stream` into `table`, quarantining into `quarantine` and
    keeping the alert state (and the events of its changes) in `alerts`."""
    on_failure = add_on_failure_queue(t, "OnFailureQueue", naming.name("sqs", "onfailure"), key_arn)
    log_group = add_log_group(t, "ProcessorLogGroup", naming.function_log_group, params, key_arn)
    role = t.add_resource(
        service_role(
            "ProcessorRole",
            role_name=naming.name("role", "streamprocessor"),
            service="lambda.amazonaws.com",
            policy_name="stream-processor",
            description="Runs the stream processor: reads the stream, writes the table and "
            "the alert state.",
            statements=[
                allow(
                    [
                        kin.DescribeStream,
                        kin.DescribeStreamSummary,
                        kin.GetRecords,
                        kin.GetShardIterator,
                        kin.ListShards,
                    ],
                    [GetAtt(stream, "Arn")],
                    sid="ReadTheStream",
                ),
                allow(
                    [ddb.BatchWriteItem, ddb.PutItem], [GetAtt(table, "Arn")], sid="WriteReadings"
                ),
                allow(
                    [s3a.PutObject],
                    [objects_under(quarantine, Ref(params.settings.quarantine_prefix))],
                    sid="QuarantineRecords",
                ),
                allow([sqsa.SendMessage], [GetAtt(on_failure, "Arn")], sid="ReportFailedBatches"),
                *function_basics(log_group, key_arn),
                *processor_alert_statements(alerts, table),
            ],
        )
    )
    function = t.add_resource(
        package_function(
            "ProcessorFunction",
            name=naming.function,
            description="Validates, classifies and stores sensor readings from Kinesis.",
            handler=HANDLER,
            role=role,
            log_group=log_group,
            params=params,
            environment={
                **environment(params.settings, table, quarantine),
                **alert_environment(params.alerts, alerts),
            },
            key_arn=key_arn,
            MemorySize=Ref(params.function.memory_mb),
            Timeout=Ref(params.function.timeout_seconds),
            ReservedConcurrentExecutions=If(
                HAS_RESERVED_CONCURRENCY, Ref(params.function.reserved_concurrency), NoValue
            ),
            checkov_skips=[
                skip(
                    "CKV_AWS_116",
                    "Invoked only by the Kinesis event source mapping, never "
                    "asynchronously; failed batches go to the mapping's on-failure "
                    "SQS destination, so a function DLQ would never receive anything.",
                ),
                skip(
                    "CKV_AWS_117",
                    "Talks only to AWS APIs (Kinesis, DynamoDB, S3, SQS) over TLS with "
                    "IAM auth; no private network resources, so no VPC attachment.",
                ),
                skip(
                    "CKV_AWS_115",
                    "Reserved concurrency is the ReservedConcurrency parameter; unset by "
                    "default because one batch per shard already bounds concurrency.",
                ),
            ],
        )
    )
    t.add_resource(
        EventSourceMapping(
            "ProcessorEventSourceMapping",
            EventSourceArn=GetAtt(stream, "Arn"),
            FunctionName=Ref(function),
            Enabled=True,
            BatchSize=Ref(params.mapping.batch_size),
            MaximumBatchingWindowInSeconds=Ref(params.mapping.batching_window_seconds),
            ParallelizationFactor=Ref(params.mapping.parallelization_factor),
            StartingPosition=Ref(params.mapping.starting_position),
            FunctionResponseTypes=["ReportBatchItemFailures"],
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=Ref(params.mapping.maximum_retry_attempts),
            MaximumRecordAgeInSeconds=Ref(params.mapping.maximum_record_age_seconds),
            DestinationConfig=DestinationConfig(
                OnFailure=OnFailure(Destination=GetAtt(on_failure, "Arn"))
            ),
        )
    )
    return StreamProcessor(function=function, on_failure_queue=on_failure)


def environment(
    settings: ProcessorSettings, table: Table, quarantine: Bucket
) -> dict[str, AWSHelperFn]:
    """The function's environment: where it writes, and what `stream_processor.config` reads."""
    return {
        contract.ENV_TABLE_NAME: Ref(table),
        contract.ENV_QUARANTINE_BUCKET: Ref(quarantine),
        contract.ENV_QUARANTINE_PREFIX: Ref(settings.quarantine_prefix),
        contract.ENV_HIGH_TEMPERATURE_C: Ref(settings.high_temperature_c),
        contract.ENV_LOW_HUMIDITY_PCT: Ref(settings.low_humidity_pct),
        contract.ENV_TEMPERATURE_MIN_C: Ref(settings.temperature_min_c),
        contract.ENV_TEMPERATURE_MAX_C: Ref(settings.temperature_max_c),
        contract.ENV_HUMIDITY_MIN_PCT: Ref(settings.humidity_min_pct),
        contract.ENV_HUMIDITY_MAX_PCT: Ref(settings.humidity_max_pct),
        contract.ENV_TTL_DAYS: Ref(settings.ttl_days),
        contract.ENV_WRITE_CONCURRENCY: Ref(settings.write_concurrency),
        contract.ENV_EARLIEST_TIMESTAMP: Ref(settings.earliest_timestamp),
        contract.ENV_MAX_CLOCK_SKEW_SECONDS: Ref(settings.max_clock_skew_seconds),
    }
