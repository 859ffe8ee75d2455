"""The alert state table's stream, read as Lambda's mapping reads it for the alert notifier.

For tests of the functions on their own (no event source mapping runner): the writes
made since the last call, read with the DynamoDB Streams API, in the event shape
Lambda gives a function.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from stream_processor.aws_clients import make_client


class StateStream:
    """Reads one table's stream from its start, remembering how far it has read."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._streams = make_client("dynamodbstreams", 1)
        self._arn: str = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self._after: dict[str, str] = {}  # shard id -> last sequence number read

    def new_records(self) -> list[dict[str, Any]]:
        """The stream records written since the last call, in order, as Lambda delivers them."""
        records: list[dict[str, Any]] = []
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            position: dict[str, str] = (
                {
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                    "SequenceNumber": self._after[shard_id],
                }
                if shard_id in self._after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, **position
            )["ShardIterator"]
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                for record in page["Records"]:
                    records.append(self._as_delivered(record))
                    self._after[shard_id] = record["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
        return records

    def _as_delivered(self, record: dict[str, Any]) -> dict[str, Any]:
        # Lambda's event gives the creation time as epoch seconds, and the stream's ARN.
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, dt.datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {**record, "dynamodb": change, "eventSourceARN": self._arn}
