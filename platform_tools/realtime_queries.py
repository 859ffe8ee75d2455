"""The real-time queries the readings table exists for.

- `latest`: the latest reading of every device;
- `device_history`: one device's readings, newest first, optionally since a time;
- `recent_alerts`: readings that raised alerts, through the sparse alerts index,
  one query per day (the index is partitioned by the reading's UTC date).

Rows come back as plain dicts with numbers as floats, ready to print.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from stream_processor import contract

_DESERIALIZE = TypeDeserializer().deserialize


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (Decimal -> float or int)."""
    row = {}
    for name, value in item.items():
        value = _DESERIALIZE(value) if isinstance(value, dict) and len(value) == 1 else value
        if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
            value = int(value) if value == value.to_integral_value() else float(value)
        row[name] = value
    return row


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get("Items", [])


def latest(client: Any, table: str) -> list[dict[str, Any]]:
    """The latest reading of every device, sorted by device id.

    The device list comes from a key-only scan (cheap per item, but it reads
    the whole table); each device's latest reading is then one Query.
    """
    devices = {
        item[contract.DEVICE_ID]["S"]
        for item in _pages(
            client,
            "scan",
            TableName=table,
            ProjectionExpression="#d",
            ExpressionAttributeNames={"#d": contract.DEVICE_ID},
        )
    }
    rows: list[dict[str, Any]] = []
    for device in sorted(devices):
        found = client.query(
            TableName=table,
            KeyConditionExpression="#d = :d",
            ExpressionAttributeNames={"#d": contract.DEVICE_ID},
            ExpressionAttributeValues={":d": {"S": device}},
            ScanIndexForward=False,
            Limit=1,
        )["Items"]
        rows.extend(_plain(item) for item in found)
    return rows


def device_history(
    client: Any, table: str, device_id: str, since: float | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A device's readings, newest first, at most `limit`, optionally from epoch `since` on."""
    names = {"#d": contract.DEVICE_ID}
    values: dict[str, Any] = {":d": {"S": device_id}}
    expression = "#d = :d"
    if since is not None:
        expression += " AND #t >= :since"
        names["#t"] = contract.TIMESTAMP
        values[":since"] = {"N": repr(float(since))}
    items = client.query(
        TableName=table,
        KeyConditionExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        Limit=limit,
    )["Items"]
    return [_plain(item) for item in items]


def recent_alerts(
    client: Any, table: str, since: float, until: float | None = None
) -> list[dict[str, Any]]:
    """Readings with alerts whose reading time is in [since, until], newest first."""
    until = dt.datetime.now(dt.UTC).timestamp() if until is None else until
    day = dt.datetime.fromtimestamp(since, dt.UTC).date()
    last = dt.datetime.fromtimestamp(until, dt.UTC).date()
    rows: list[dict[str, Any]] = []
    while day <= last:
        rows.extend(
            _plain(item)
            for item in _pages(
                client,
                "query",
                TableName=table,
                IndexName=contract.ALERTS_INDEX,
                KeyConditionExpression="#a = :day AND #t BETWEEN :since AND :until",
                ExpressionAttributeNames={"#a": contract.ALERT_DATE, "#t": contract.TIMESTAMP},
                ExpressionAttributeValues={
                    ":day": {"S": day.isoformat()},
                    ":since": {"N": repr(float(since))},
                    ":until": {"N": repr(float(until))},
                },
            )
        )
        day += dt.timedelta(days=1)
    rows.sort(key=lambda r: r[contract.TIMESTAMP], reverse=True)
    return rows


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as an aligned text table; lists are joined with commas, missing values blank."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(lines)
