"""Ingestion: the Kinesis stream, the IoT topic rule feeding it (and its role), the device policy.

Devices publish to the sensor topic; the rule puts each message on the stream
keyed by device, and keeps what it cannot deliver in the quarantine bucket.
"""

from __future__ import annotations

from awacs import iot as iota
from awacs import kinesis as kin
from awacs import kms as kmsa
from awacs import s3 as s3a
from awacs.aws import Bool, Condition
from troposphere import AWSHelperFn, GetAtt, If, NoValue, Ref, Sub, Template, iam
from troposphere.iot import Action, KinesisAction, S3Action, TopicRule, TopicRulePayload
from troposphere.iot import Policy as IotPolicy
from troposphere.kinesis import Stream, StreamEncryption, StreamModeDetails
from troposphere.s3 import Bucket

from cloudformation.buckets import objects_under
from cloudformation.iam import allow, arn, document, service_role
from cloudformation.layout import RULE_ERRORS_PREFIX
from cloudformation.naming import Naming
from cloudformation.streaming.parameters import STREAM_IS_ON_DEMAND, IngestionParameters


def add_stream(
    t: Template, naming: Naming, params: IngestionParameters, key_arn: AWSHelperFn
) -> Stream:
    """Add the encrypted stream of readings, provisioned or on demand."""
    return t.add_resource(
        Stream(
            "SensorStream",
            Name=naming.stream,
            StreamModeDetails=StreamModeDetails(
                StreamMode=If(STREAM_IS_ON_DEMAND, "ON_DEMAND", "PROVISIONED")
            ),
            ShardCount=If(STREAM_IS_ON_DEMAND, NoValue, Ref(params.shard_count)),
            RetentionPeriodHours=Ref(params.stream_retention_hours),
            StreamEncryption=StreamEncryption(EncryptionType="KMS", KeyId=key_arn),
        )
    )


def add_topic_rule(
    t: Template,
    naming: Naming,
    params: IngestionParameters,
    *,
    stream: Stream,
    quarantine: Bucket,
    key_arn: AWSHelperFn,
) -> TopicRule:
    """Add the rule routing the sensor topic into `stream`, and the role it acts as."""
    rule_role = t.add_resource(_topic_rule_role(naming, stream, quarantine, key_arn))
    return t.add_resource(
        TopicRule(
            "SensorTopicRule",
            RuleName=naming.topic_rule,
            TopicRulePayload=TopicRulePayload(
                Description="Routes sensor readings into Kinesis, keyed per device.",
                Sql=Sub(f"SELECT * FROM '${{{params.sensor_topic.title}}}'"),
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


def _topic_rule_role(
    naming: Naming, stream: Stream, quarantine: Bucket, key_arn: AWSHelperFn
) -> iam.Role:
    """The rule's role: put readings on the stream, keep failed messages in the quarantine."""
    return service_role(
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
            allow([kmsa.GenerateDataKey], [key_arn], sid="EncryptWithTheDataKey"),
        ],
    )


def add_device_policy(t: Template, naming: Naming, params: IngestionParameters) -> IotPolicy:
    """Add the IoT policy for device certificates: connect as its own thing, publish readings."""
    return t.add_resource(
        IotPolicy(
            "DevicePolicy",
            PolicyName=naming.device_policy,
            PolicyDocument=document(
                [
                    allow(
                        [iota.Connect],
                        [arn("iot", "client/${!iot:Connection.Thing.ThingName}")],
                        sid="ConnectAsOwnThingName",
                        condition=Condition(Bool("iot:Connection.Thing.IsAttached", "true")),
                    ),
                    allow(
                        [iota.Publish],
                        [arn("iot", f"topic/${{{params.sensor_topic.title}}}")],
                        sid="PublishReadings",
                    ),
                ]
            ),
        )
    )
