"""A bare table keyed as the stream processor's readings table, for tests and benchmarks.

The deployed table comes from the streaming stack; tests of the local cloud's table
features (exports, snapshots) want many small tables of that key shape instead.
"""

from __future__ import annotations

from typing import Any

from stream_processor import contract


def create_readings_table(dynamodb: Any, name: str, *, pitr: bool = True) -> dict[str, Any]:
    """Create `name` keyed by device id and reading time (on demand), with PITR if `pitr`.

    Returns the table's description, with `PointInTimeRecoveryDescription` (as
    UpdateContinuousBackups answered) added when PITR was turned on.
    """
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": contract.DEVICE_ID, "KeyType": "HASH"},
            {"AttributeName": contract.TIMESTAMP, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contract.DEVICE_ID, "AttributeType": "S"},
            {"AttributeName": contract.TIMESTAMP, "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    if pitr:
        backups = dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )["ContinuousBackupsDescription"]
        table["PointInTimeRecoveryDescription"] = backups["PointInTimeRecoveryDescription"]
    return table
