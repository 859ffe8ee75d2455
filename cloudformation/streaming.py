"""The streaming stack: IoT rule -> Kinesis -> Lambda -> DynamoDB, with quarantine and alarms."""

from __future__ import annotations

from awacs import dynamodb as ddb
from awacs import iot as iota
from awacs import kinesis as kin
from awacs import kms as kmsa
from awacs import logs as logsa
from awacs import s3 as s3a
from awacs import sqs as sqsa
from awacs.aws import ArnEquals, Bool, Condition
from troposphere import Equals, GetAtt, If, Not, Parameter, Ref, Sub, Template
from troposphere.awslambda import (
    Code,
    DestinationConfig,
    Environment,
    EventSourceMapping,
    Function,
    OnFailure,
)
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.dynamodb import (
    AttributeDefinition,
    GlobalSecondaryIndex,
    KeySchema,
    PointInTimeRecoverySpecification,
    Projection,
    ProvisionedThroughput,
    SSESpecification,
    Table,
    TimeToLiveSpecification,
)
from troposphere.iot import Action, KinesisAction, S3Action, TopicRule, TopicRulePayload
from troposphere.iot import Policy as IotPolicy
from troposphere.kinesis import Stream, StreamEncryption, StreamModeDetails
from troposphere.logs import LogGroup
from troposphere.sns import Topic
from troposphere.sqs import Queue

from cloudformation.buckets import (
    BucketSpec,
    hardened_bucket,
    objects_under,
)
from cloudformation.iam import allow, arn, document, service_role
from cloudformation.kms import USE_ACTIONS, customer_key, key_arn, service_statement
from cloudformation.layout import RULE_ERRORS_PREFIX
from cloudformation.naming import SENSOR_TOPIC, Naming
from cloudformation.outputs import StreamingOutput
from cloudformation.parameters import (
    KEY_PREFIX_PATTERN,
    choice,
    export_output,
    number,
    skip,
    text,
)
from stream_processor import config, contract

#: The handler, named as a string: this package never imports the function code.
HANDLER = "stream_processor.handler.handler"
RUNTIME = "python3.12"
#: Retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
ON_FAILURE_QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
ALARM_PERIOD_SECONDS = 60


def build_streaming(naming: Naming) -> Template:
    """The streaming stack's template for one environment and region."""
    t = Template(
        Description=f"IoT streaming ingestion ({naming.env}, {naming.region}): IoT topic rule, "
        "Kinesis, stream processor Lambda, DynamoDB, quarantine bucket and alarms."
    )

    # --- Parameters -------------------------------------------------------
    topic = text(
        t,
        "SensorTopic",
        "MQTT topic the devices publish readings to.",
        default=SENSOR_TOPIC,
        pattern=r"^[^#+$]+$",
    )
    stream_mode = choice(
        t, "StreamMode", "PROVISIONED", ["PROVISIONED", "ON_DEMAND"], "Kinesis capacity mode."
    )
    shard_count = number(
        t, "ShardCount", 1, "Shards when StreamMode is PROVISIONED.", minimum=1, maximum=500
    )
    stream_retention = number(
        t, "StreamRetentionHours", 24, "How long Kinesis keeps records.", minimum=24, maximum=8760
    )
    code_bucket = text(t, "CodeS3Bucket", "Bucket holding the packaged stream_processor zip.")
    code_key = text(t, "CodeS3Key", "Key of the zip; it contains the zip's sha256.")
    memory = number(
        t, "FunctionMemoryMb", 256, "Stream processor memory (MB).", minimum=128, maximum=10240
    )
    timeout = number(
        t, "FunctionTimeoutSeconds", 60, "Stream processor timeout (s).", minimum=1, maximum=900
    )
    reserved = number(
        t,
        "ReservedConcurrency",
        -1,
        "Reserved concurrent executions; -1 leaves the function unreserved.",
        minimum=-1,
        maximum=1000,
    )
    log_retention = t.add_parameter(_log_retention_parameter())
    high_temp = number(
        t, "HighTemperatureC", 50, "Alert above this temperature (C).", minimum=-40, maximum=125
    )
    low_humidity = number(
        t, "LowHumidityPct", 20, "Alert below this relative humidity (%).", minimum=0, maximum=100
    )
    temp_min = number(
        t,
        "TemperatureMinC",
        -40,
        "Lowest temperature the sensors can read (C).",
        minimum=-273,
        maximum=1000,
    )
    temp_max = number(
        t,
        "TemperatureMaxC",
        125,
        "Highest temperature the sensors can read (C).",
        minimum=-273,
        maximum=1000,
    )
    humidity_min = number(
        t, "HumidityMinPct", 0, "Lowest physically possible humidity (%).", minimum=0, maximum=100
    )
    humidity_max = number(
        t,
        "HumidityMaxPct",
        100,
        "Highest physically possible humidity (%).",
        minimum=0,
        maximum=100,
    )
    ttl_days = number(
        t,
        "TtlDays",
        90,
        "Days a reading stays in the table after ingestion.",
        minimum=1,
        maximum=3650,
    )
    write_concurrency = number(
        t,
        "WriteConcurrency",
        16,
        "Concurrent BatchWriteItem requests per invocation.",
        minimum=1,
        maximum=64,
    )
    quarantine_prefix = text(
        t,
        "QuarantinePrefix",
        "Key prefix for quarantined records.",
        default=config.DEFAULT_QUARANTINE_PREFIX,
        pattern=KEY_PREFIX_PATTERN,
    )
    quarantine_days = number(
        t,
        "QuarantineRetentionDays",
        90,
        "Days quarantined records and rule errors are kept.",
        minimum=1,
        maximum=3650,
    )
    batch_size = number(
        t, "BatchSize", 100, "Records per Lambda invocation.", minimum=1, maximum=10000
    )
    batching_window = number(
        t,
        "BatchingWindowSeconds",
        1,
        "Wait up to this long to fill a batch.",
        minimum=0,
        maximum=300,
    )
    parallelization = number(
        t,
        "ParallelizationFactor",
        1,
        "Concurrent batches per shard (order is kept per partition key).",
        minimum=1,
        maximum=10,
    )
    starting_position = choice(
        t,
        "StartingPosition",
        "TRIM_HORIZON",
        ["TRIM_HORIZON", "LATEST"],
        "Where a new mapping starts reading the stream.",
    )
    retry_attempts = number(
        t,
        "MaximumRetryAttempts",
        3,
        "Retries of a failing batch before it goes to the on-failure queue.",
        minimum=0,
        maximum=10000,
    )
    record_age = number(
        t,
        "MaximumRecordAgeSeconds",
        3600,
        "Records older than this go to the on-failure queue unprocessed.",
        minimum=60,
        maximum=604800,
    )
    billing_mode = choice(
        t,
        "TableBillingMode",
        "PAY_PER_REQUEST",
        ["PAY_PER_REQUEST", "PROVISIONED"],
        "DynamoDB capacity mode.",
    )
    read_capacity = number(
        t, "TableReadCapacity", 5, "Read units when PROVISIONED.", minimum=1, maximum=40000
    )
    write_capacity = number(
        t, "TableWriteCapacity", 5, "Write units when PROVISIONED.", minimum=1, maximum=40000
    )
    iterator_age_ms = number(
        t,
        "IteratorAgeAlarmMs",
        60000,
        "Alarm when the oldest unprocessed record is older than this (ms).",
        minimum=1000,
        maximum=604800000,
    )

    # --- Conditions -------------------------------------------------------
    t.add_condition("StreamIsOnDemand", Equals(Ref(stream_mode), "ON_DEMAND"))
    t.add_condition("TableIsProvisioned", Equals(Ref(billing_mode), "PROVISIONED"))
    t.add_condition("HasReservedConcurrency", Not(Equals(Ref(reserved), -1)))

    # --- Encryption -------------------------------------------------------
    log_group_name = f"/aws/lambda/{naming.function}"
    key = customer_key(
        t,
        "DataKey",
        alias=naming.name("kms", "iotdata"),
        description=f"Encrypts the {naming.env} streaming data: stream, table, queue, topic, logs.",
        service_statements=[
            service_statement(
                "CloudWatchLogsEncryptsTheFunctionLogGroup",
                Sub("logs.${AWS::Region}.amazonaws.com"),
                [*USE_ACTIONS, kmsa.Encrypt, kmsa.DescribeKey],
                condition=Condition(
                    ArnEquals(
                        "kms:EncryptionContext:aws:logs:arn",
                        arn("logs", f"log-group:{log_group_name}"),
                    )
                ),
            ),
            # Alarms publish to the encrypted topic as the CloudWatch service.
            service_statement(
                "CloudWatchAlarmsPublishToTheEncryptedTopic",
                "cloudwatch.amazonaws.com",
                list(USE_ACTIONS),
            ),
        ],
    )
    key_arn_ = key_arn(key)

    # --- Buckets ----------------------------------------------------------
    access_logs = hardened_bucket(t, _access_log_bucket_spec(naming))
    quarantine = hardened_bucket(
        t,
        BucketSpec(
            title="QuarantineBucket",
            name=Sub(naming.bucket_sub("quarantine")),
            description="Quarantined records and topic rule errors.",
            kms_key_arn=key_arn_,
            log_bucket=access_logs.ref(),
            log_prefix="quarantine/",
            expire_days=Ref(quarantine_days),
        ),
    )

    # --- Stream and table -------------------------------------------------
    stream = t.add_resource(
        Stream(
            "SensorStream",
            Name=naming.stream,
            StreamModeDetails=StreamModeDetails(
                StreamMode=If("StreamIsOnDemand", "ON_DEMAND", "PROVISIONED")
            ),
            ShardCount=If("StreamIsOnDemand", Ref("AWS::NoValue"), Ref(shard_count)),
            RetentionPeriodHours=Ref(stream_retention),
            StreamEncryption=StreamEncryption(EncryptionType="KMS", KeyId=key_arn_),
        )
    )
    table = t.add_resource(_table(naming, key_arn_, read_capacity, write_capacity))

    # --- Failure handling and alarms' topic -------------------------------
    on_failure = t.add_resource(
        Queue(
            "OnFailureQueue",
            QueueName=naming.name("sqs", "onfailure"),
            KmsMasterKeyId=key_arn_,
            KmsDataKeyReusePeriodSeconds=300,
            MessageRetentionPeriod=ON_FAILURE_QUEUE_RETENTION_SECONDS,
        )
    )
    alarm_topic = t.add_resource(
        Topic("AlarmTopic", TopicName=naming.name("sns", "alarms"), KmsMasterKeyId=key_arn_)
    )

    # --- Stream processor -------------------------------------------------
    log_group = t.add_resource(
        LogGroup(
            "ProcessorLogGroup",
            LogGroupName=log_group_name,
            RetentionInDays=Ref(log_retention),
            KmsKeyId=key_arn_,
        )
    )
    processor_role = t.add_resource(
        service_role(
            "ProcessorRole",
            role_name=naming.name("role", "streamprocessor"),
            service="lambda.amazonaws.com",
            policy_name="stream-processor",
            description="Runs the stream processor: reads the stream, writes the table.",
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
                    [objects_under(quarantine, Ref(quarantine_prefix))],
                    sid="QuarantineRecords",
                ),
                allow([sqsa.SendMessage], [GetAtt(on_failure, "Arn")], sid="ReportFailedBatches"),
                allow(USE_ACTIONS, [key_arn_], sid="UseTheDataKey"),
                allow(
                    [logsa.CreateLogStream, logsa.PutLogEvents],
                    [GetAtt(log_group, "Arn")],
                    sid="WriteOwnLogs",
                ),
            ],
        )
    )
    env = {
        contract.ENV_TABLE_NAME: Ref(table),
        contract.ENV_QUARANTINE_BUCKET: Ref(quarantine),
        contract.ENV_QUARANTINE_PREFIX: Ref(quarantine_prefix),
        contract.ENV_HIGH_TEMPERATURE_C: Ref(high_temp),
        contract.ENV_LOW_HUMIDITY_PCT: Ref(low_humidity),
        contract.ENV_TEMPERATURE_MIN_C: Ref(temp_min),
        contract.ENV_TEMPERATURE_MAX_C: Ref(temp_max),
        contract.ENV_HUMIDITY_MIN_PCT: Ref(humidity_min),
        contract.ENV_HUMIDITY_MAX_PCT: Ref(humidity_max),
        contract.ENV_TTL_DAYS: Ref(ttl_days),
        contract.ENV_WRITE_CONCURRENCY: Ref(write_concurrency),
    }
    function = t.add_resource(
        Function(
            "ProcessorFunction",
            DependsOn=[log_group.title],  # the function must not create its own log group
            FunctionName=naming.function,
            Description="Validates, classifies and stores sensor readings from Kinesis.",
            Handler=HANDLER,
            Runtime=RUNTIME,
            Role=GetAtt(processor_role, "Arn"),
            Code=Code(S3Bucket=Ref(code_bucket), S3Key=Ref(code_key)),
            MemorySize=Ref(memory),
            Timeout=Ref(timeout),
            ReservedConcurrentExecutions=If(
                "HasReservedConcurrency", Ref(reserved), Ref("AWS::NoValue")
            ),
            Environment=Environment(Variables=env),
            KmsKeyArn=key_arn_,
            Metadata={
                "checkov": {
                    "skip": [
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
                    ]
                }
            },
        )
    )
    t.add_resource(
        EventSourceMapping(
            "ProcessorEventSourceMapping",
            EventSourceArn=GetAtt(stream, "Arn"),
            FunctionName=Ref(function),
            Enabled=True,
            BatchSize=Ref(batch_size),
            MaximumBatchingWindowInSeconds=Ref(batching_window),
            ParallelizationFactor=Ref(parallelization),
            StartingPosition=Ref(starting_position),
            FunctionResponseTypes=["ReportBatchItemFailures"],
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=Ref(retry_attempts),
            MaximumRecordAgeInSeconds=Ref(record_age),
            DestinationConfig=DestinationConfig(
                OnFailure=OnFailure(Destination=GetAtt(on_failure, "Arn"))
            ),
        )
    )

    # --- IoT ingestion ----------------------------------------------------
    rule_role = t.add_resource(
        service_role(
            "TopicRuleRole",
            role_name=naming.name("role", "iotrule"),
            service="iot.amazonaws.com",
            policy_name="topic-rule",
            description="Lets the sensor topic rule put readings on the stream.",
            statements=[
                allow([kin.PutRecord], [GetAtt(stream, "Arn")], sid="PutReadings"),
                allow(
                    [s3a.PutObject],
                    [objects_under(quarantine, RULE_ERRORS_PREFIX)],
                    sid="KeepFailedMessages",
                ),
                allow([kmsa.GenerateDataKey], [key_arn_], sid="EncryptWithTheDataKey"),
            ],
        )
    )
    t.add_resource(
        TopicRule(
            "SensorTopicRule",
            RuleName=naming.topic_rule,
            TopicRulePayload=TopicRulePayload(
                Description="Routes sensor readings into Kinesis, keyed per device.",
                Sql=Sub("SELECT * FROM '${SensorTopic}'"),
                AwsIotSqlVersion="2016-03-23",
                RuleDisabled=False,
                Actions=[
                    Action(
                        Kinesis=KinesisAction(
                            StreamName=Ref(stream),
                            # Per-device ordering. A payload without device_id (or not JSON)
                            # gets an empty key, Kinesis rejects it and the error action below
                            # keeps the message.
                            PartitionKey="${device_id}",
                            RoleArn=GetAtt(rule_role, "Arn"),
                        )
                    )
                ],
                ErrorAction=Action(
                    S3=S3Action(
                        BucketName=Ref(quarantine),
                        Key=RULE_ERRORS_PREFIX + "${timestamp()}-${newuuid()}.json",
                        RoleArn=GetAtt(rule_role, "Arn"),
                    )
                ),
            ),
        )
    )
    device_policy_name = naming.name("iotpolicy", "sensors")
    t.add_resource(
        IotPolicy(
            "DevicePolicy",
            PolicyName=device_policy_name,
            PolicyDocument=document(
                [
                    allow(
                        [iota.Connect],
                        [arn("iot", "client/${!iot:Connection.Thing.ThingName}")],
                        sid="ConnectAsOwnThingName",
                        condition=Condition(Bool("iot:Connection.Thing.IsAttached", "true")),
                    ),
                    allow(
                        [iota.Publish], [arn("iot", "topic/${SensorTopic}")], sid="PublishReadings"
                    ),
                ]
            ),
        )
    )

    # --- Alarms -----------------------------------------------------------
    fn_dims = [MetricDimension(Name="FunctionName", Value=Ref(function))]
    _alarm(
        t,
        naming,
        "IteratorAge",
        alarm_topic,
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
        Ref(iterator_age_ms),
        fn_dims,
        "Stream processing is falling behind.",
    )
    _alarm(
        t,
        naming,
        "FunctionErrors",
        alarm_topic,
        "AWS/Lambda",
        "Errors",
        "Sum",
        0,
        fn_dims,
        "The stream processor raised errors (batches are being retried).",
    )
    _alarm(
        t,
        naming,
        "FunctionThrottles",
        alarm_topic,
        "AWS/Lambda",
        "Throttles",
        "Sum",
        0,
        fn_dims,
        "The stream processor is being throttled.",
    )
    _alarm(
        t,
        naming,
        "OnFailureQueueDepth",
        alarm_topic,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        0,
        [MetricDimension(Name="QueueName", Value=GetAtt(on_failure, "QueueName"))],
        "Batches were skipped after retries; their coordinates are in the queue.",
    )

    # --- Outputs ----------------------------------------------------------
    outputs = {
        StreamingOutput.TABLE_NAME: (Ref(table), "DynamoDB table of readings."),
        StreamingOutput.TABLE_ARN: (GetAtt(table, "Arn"), "ARN of the readings table."),
        StreamingOutput.STREAM_NAME: (Ref(stream), "Kinesis stream the topic rule feeds."),
        StreamingOutput.STREAM_ARN: (GetAtt(stream, "Arn"), "ARN of the stream."),
        StreamingOutput.FUNCTION_NAME: (Ref(function), "Stream processor function."),
        StreamingOutput.FUNCTION_ARN: (GetAtt(function, "Arn"), "ARN of the stream processor."),
        StreamingOutput.QUARANTINE_BUCKET_NAME: (
            Ref(quarantine),
            "Bucket of quarantined records and errors.",
        ),
        StreamingOutput.QUARANTINE_PREFIX: (
            Ref(quarantine_prefix),
            "Key prefix of quarantined records.",
        ),
        StreamingOutput.RULE_ERRORS_PREFIX: (
            RULE_ERRORS_PREFIX,
            "Key prefix of messages the rule failed on.",
        ),
        StreamingOutput.ACCESS_LOG_BUCKET_NAME: (
            access_logs.ref(),
            "Bucket receiving S3 access logs.",
        ),
        StreamingOutput.ON_FAILURE_QUEUE_URL: (Ref(on_failure), "Queue of skipped-batch records."),
        StreamingOutput.ON_FAILURE_QUEUE_ARN: (
            GetAtt(on_failure, "Arn"),
            "ARN of the on-failure queue.",
        ),
        # The rule's name as a literal: the same value as Ref, and it resolves even where the
        # emulator does not create topic rules.
        StreamingOutput.TOPIC_RULE_NAME: (
            naming.topic_rule,
            "IoT topic rule routing readings to Kinesis.",
        ),
        StreamingOutput.SENSOR_TOPIC: (Ref(topic), "MQTT topic of sensor readings."),
        StreamingOutput.DEVICE_POLICY_NAME: (
            device_policy_name,
            "IoT policy to attach to device certificates.",
        ),
        StreamingOutput.ALARM_TOPIC_ARN: (Ref(alarm_topic), "SNS topic the alarms notify."),
        StreamingOutput.DATA_KEY_ARN: (key_arn_, "KMS key encrypting the streaming data."),
    }
    for name, (value, description) in outputs.items():
        export_output(t, name, value, description)
    return t


def _table(naming: Naming, key_arn_, read_capacity, write_capacity) -> Table:
    """The readings table: natural key, PITR for exports, TTL and a sparse alerts index."""
    throughput = If(
        "TableIsProvisioned",
        ProvisionedThroughput(
            ReadCapacityUnits=Ref(read_capacity), WriteCapacityUnits=Ref(write_capacity)
        ),
        Ref("AWS::NoValue"),
    )
    return Table(
        "ReadingsTable",
        TableName=naming.table,
        BillingMode=If("TableIsProvisioned", "PROVISIONED", "PAY_PER_REQUEST"),
        ProvisionedThroughput=throughput,
        AttributeDefinitions=[
            AttributeDefinition(AttributeName=contract.DEVICE_ID, AttributeType="S"),
            AttributeDefinition(AttributeName=contract.TIMESTAMP, AttributeType="N"),
            AttributeDefinition(AttributeName=contract.ALERT_DATE, AttributeType="S"),
        ],
        KeySchema=[
            KeySchema(AttributeName=contract.DEVICE_ID, KeyType="HASH"),
            KeySchema(AttributeName=contract.TIMESTAMP, KeyType="RANGE"),
        ],
        GlobalSecondaryIndexes=[
            # Sparse: only readings with alerts carry alert_date, so the index lists alerts.
            GlobalSecondaryIndex(
                IndexName=contract.ALERTS_INDEX,
                KeySchema=[
                    KeySchema(AttributeName=contract.ALERT_DATE, KeyType="HASH"),
                    KeySchema(AttributeName=contract.TIMESTAMP, KeyType="RANGE"),
                ],
                Projection=Projection(
                    ProjectionType="INCLUDE",
                    NonKeyAttributes=[*contract.MEASUREMENTS, contract.ALERTS],
                ),
                ProvisionedThroughput=throughput,
            )
        ],
        PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(
            PointInTimeRecoveryEnabled=True
        ),
        SSESpecification=SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key_arn_),
        TimeToLiveSpecification=TimeToLiveSpecification(
            AttributeName=contract.EXPIRES_AT, Enabled=True
        ),
    )


def _access_log_bucket_spec(naming: Naming) -> BucketSpec:
    """The bucket receiving S3 server access logs of the project's buckets."""
    spec = BucketSpec(
        title="AccessLogBucket",
        name=Sub(naming.bucket_sub("accesslogs")),
        description="S3 server access logs of the project's buckets.",
        kms_key_arn=None,
        expire_days=365,
        receives_access_logs=True,
        checkov_skips=[
            skip("CKV_AWS_18", "This is the access-log target; logging it into itself loops."),
        ],
    )
    return spec


def _log_retention_parameter() -> Parameter:
    return Parameter(
        "LogRetentionDays",
        Type="Number",
        Default=365,
        AllowedValues=list(LOG_RETENTION_DAYS),
        Description="Days the function's logs are kept.",
    )


def _alarm(
    t: Template,
    naming: Naming,
    purpose: str,
    topic: Topic,
    namespace: str,
    metric: str,
    statistic: str,
    threshold,
    dimensions: list[MetricDimension],
    description: str,
) -> Alarm:
    """An alarm notifying the alarm topic when `metric` goes above `threshold`."""
    return t.add_resource(
        Alarm(
            f"{purpose}Alarm",
            AlarmName=naming.name("alarm", purpose.lower()),
            AlarmDescription=description,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=dimensions,
            Statistic=statistic,
            Period=ALARM_PERIOD_SECONDS,
            EvaluationPeriods=5,
            DatapointsToAlarm=3,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[Ref(topic)],
            OKActions=[Ref(topic)],
        )
    )
