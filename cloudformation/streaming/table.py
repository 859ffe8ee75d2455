"""The readings table: natural key, PITR for exports, TTL and a sparse alerts index."""

from __future__ import annotations

from troposphere import AWSHelperFn, If, NoValue, Ref, Template
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

from cloudformation.naming import Naming
from cloudformation.streaming.parameters import TABLE_IS_PROVISIONED, TableParameters
from stream_processor import contract


def add_readings_table(
    t: Template, naming: Naming, params: TableParameters, key_arn: AWSHelperFn
) -> Table:
    """Add the table the stream processor writes readings to, encrypted with the data key."""
    throughput = If(
        TABLE_IS_PROVISIONED,
        ProvisionedThroughput(
            ReadCapacityUnits=Ref(params.read_capacity),
            WriteCapacityUnits=Ref(params.write_capacity),
        ),
        NoValue,
    )
    return t.add_resource(
        Table(
            "ReadingsTable",
            TableName=naming.table,
            BillingMode=If(TABLE_IS_PROVISIONED, "PROVISIONED", "PAY_PER_REQUEST"),
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
            SSESpecification=SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key_arn
            ),
            TimeToLiveSpecification=TimeToLiveSpecification(
                AttributeName=contract.EXPIRES_AT, Enabled=True
            ),
        )
    )
