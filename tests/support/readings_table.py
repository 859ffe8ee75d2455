"""Bare tables keyed as the stream processor's readings and alert state tables, for tests and
benchmarks.

The deployed table comes from the streaming stack; tests of the local cloud's table
features (exports, snapshots) want many small tables of that key shape instead.
"""

from __future__ import annotations

from typing import Any

from stream_processor import contract


def create_readings_table(
    dynamodb: Any, name: str, *, pitr: bool = True, alerts_index: bool = False
) -> dict[str, Any]:
    """Create `name` keyed by device id and reading time (on demand), with PITR if `pitr`
    and the contract's sparse alerts index if `alerts_index` (the function queries it).

    Returns the table's description, with `PointInTimeRecoveryDescription` (as
    UpdateContinuousBackups answered) added when PITR was turned on.
    """
    attributes = [
        {"AttributeName": contract.DEVICE_ID, "AttributeType": "S"},
        {"AttributeName": contract.TIMESTAMP, "AttributeType": "N"},
    ]
    indexes: dict[str, Any] = {}
    if alerts_index:
        attributes.append({"AttributeName": contract.ALERT_DATE, "AttributeType": "S"})
        indexes["GlobalSecondaryIndexes"] = [
            {
                "IndexName": contract.ALERTS_INDEX,
                "KeySchema": [
                    {"AttributeName": contract.ALERT_DATE, "KeyType": "HASH"},
                    {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
            {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **indexes,
    )
    table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    if pitr:
        backups = dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )["ContinuousBackupsDescription"]
        table["PointInTimeRecoveryDescription"] = backups["PointInTimeRecoveryDescription"]
    return table


def create_alert_state_table(dynamodb: Any, name: str) -> None:
    """Create `name` keyed as the stack's alert state table: device id and kind (on demand),
    with its stream of new images (the alert notifier's source)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
            {"AttributeName": contract.STATE_KIND, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contract.DEVICE_ID, "AttributeType": "S"},
            {"AttributeName": contract.STATE_KIND, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
