"""What every function of the streaming stack has: the package's code and runtime, a log
group of its own, and, for a stream's functions, a queue of the batches the mapping gave
up on."""

from __future__ import annotations

from typing import Any

from awacs import logs as logsa
from awacs.aws import Statement
from troposphere import AWSHelperFn, GetAtt, Ref, Template
from troposphere.awslambda import Code, Environment, Function
from troposphere.iam import Role
from troposphere.logs import LogGroup
from troposphere.sqs import Queue

from cloudformation.iam import allow
from cloudformation.kms import USE_ACTIONS
from cloudformation.streaming.parameters import StreamingParameters

#: Every function runs the one `stream_processor` package, on this runtime.
RUNTIME = "python3.12"

#: An on-failure queue keeps the batches' positions as long as SQS allows, so there is time
#: to look into them (the stream itself keeps them a day).
ON_FAILURE_QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
#: Seconds SQS reuses a data key before asking KMS again (the API's default).
ON_FAILURE_QUEUE_KEY_REUSE_SECONDS = 300


def add_log_group(
    t: Template, logical_id: str, name: str, params: StreamingParameters, key_arn: AWSHelperFn
) -> LogGroup:
    """Add a function's log group, encrypted with the data key, kept the stack's retention."""
    return t.add_resource(
        LogGroup(
            logical_id,
            LogGroupName=name,
            RetentionInDays=Ref(params.function.log_retention_days),
            KmsKeyId=key_arn,
        )
    )


def add_on_failure_queue(t: Template, logical_id: str, name: str, key_arn: AWSHelperFn) -> Queue:
    """Add the encrypted queue a stream mapping sends the batches it gave up on to."""
    return t.add_resource(
        Queue(
            logical_id,
            QueueName=name,
            KmsMasterKeyId=key_arn,
            KmsDataKeyReusePeriodSeconds=ON_FAILURE_QUEUE_KEY_REUSE_SECONDS,
            MessageRetentionPeriod=ON_FAILURE_QUEUE_RETENTION_SECONDS,
        )
    )


def function_basics(log_group: LogGroup, key_arn: AWSHelperFn) -> list[Statement]:
    """What every function's role allows: using the data key (its settings, its log group,
    the tables and queues it touches are encrypted with it) and writing its own logs."""
    return [
        allow(USE_ACTIONS, [key_arn], sid="UseTheDataKey"),
        allow(
            [logsa.CreateLogStream, logsa.PutLogEvents],
            [GetAtt(log_group, "Arn")],
            sid="WriteOwnLogs",
        ),
    ]


def package_function(
    logical_id: str,
    *,
    name: str,
    description: str,
    handler: str,
    role: Role,
    log_group: LogGroup,
    params: StreamingParameters,
    environment: dict[str, Any],
    key_arn: AWSHelperFn,
    checkov_skips: list[dict[str, str]],
    **properties: Any,
) -> Function:
    """A function running `handler` of the stack's `stream_processor` package, with its own
    log group (made first, so the function does not create one without retention or key),
    its settings in `environment` (encrypted with the data key), and `properties` (memory,
    timeout...)."""
    return Function(
        logical_id,
        DependsOn=[log_group],
        FunctionName=name,
        Description=description,
        Handler=handler,
        Runtime=RUNTIME,
        Role=GetAtt(role, "Arn"),
        Code=Code(S3Bucket=Ref(params.function.code_bucket), S3Key=Ref(params.function.code_key)),
        Environment=Environment(Variables=environment),
        KmsKeyArn=key_arn,
        Metadata={"checkov": {"skip": checkov_skips}},
        **properties,
    )
