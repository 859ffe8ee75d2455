"""The per-device alert state in DynamoDB, and the readings-table look-ups state changes need.

The state table is keyed by device and kind (`contract.STATE_KIND`):

- an `alerts` item per device whose alerts have changed: its raised alerts, its
  silence, and the newest reading time whose changes were decided (so a batch
  delivered again after its changes were stored changes nothing). Every write of it
  (processor and silence check) is a put conditional on its version, so neither
  overwrites what the other wrote since it read. A write that changes something
  carries the changes' events (`outbox`): the table's stream takes them to the alert
  notifier, so a change is stored and announced, or neither.
- a `lease` item per Kinesis shard, keyed by the shard: the execution environment that
  processed the shard's last batch. An environment that finds itself still named knows
  no other has processed the shard's devices since, so the states it keeps in memory
  are still the stored ones.
- `seen` items per shard, keyed by the shard: when each of its devices was last seen,
  as JSON text, as few items as hold it (`seen_texts`). The lease's holder rewrites
  them at most once per half silence window, and within a minute when a device is new
  to them; the silence check reads them. A few items a shard rather than one a device: the
  bookkeeping costs a few writes every half window, not one per device.

`alerts` and `seen` items carry `expires_at` (DynamoDB TTL): a device that stops for
good is forgotten after the state's retention.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from stream_processor import contract as c
from stream_processor.alert_rules import DeviceStatus, RaisedAlert
from stream_processor.attribute_values import format_number
from stream_processor.retry import Deadline, call_with_retries, wait_for_retry

#: BatchGetItem takes at most 100 keys.
BATCH_GET_LIMIT = 100
#: A `seen` item's text is kept under this many bytes: an item holds at most 400 KB.
SEEN_TEXT_BYTES = 350_000
#: What a device adds to a `seen` item's text besides its id: quotes, separators and a
#: time to the millisecond.
_SEEN_ENTRY_BYTES = 24


def _key(device_id: str, kind: str) -> dict[str, dict[str, str]]:
    return {c.DEVICE_ID: {"S": device_id}, c.STATE_KIND: {"S": kind}}


def _n(value: float) -> dict[str, str]:
    return {"N": format_number(value)}


def _seen_kind(part: int) -> str:
    return f"{c.SEEN_KIND}#{part}"


def seen_texts(seen: Mapping[str, float]) -> list[str]:
    """When a shard's devices were last seen, as the texts of its `seen` items: JSON objects
    of device id to epoch seconds, each under `SEEN_TEXT_BYTES`."""
    texts: list[str] = []
    chunk: dict[str, float] = {}
    size = 2
    for device_id in sorted(seen):
        entry = len(device_id) + _SEEN_ENTRY_BYTES
        if chunk and size + entry > SEEN_TEXT_BYTES:
            texts.append(json.dumps(chunk))
            chunk, size = {}, 2
        chunk[device_id] = round(seen[device_id], 3)
        size += entry
    texts.append(json.dumps(chunk))
    return texts


def status_item(
    status: DeviceStatus, version: int, expires_at: float, outbox: str | None = None
) -> dict[str, Any]:
    """The `alerts` item of `status`, stored as `version`, with the `outbox` of the changes
    that led to it (`alert_events.outbox`), if any."""
    item: dict[str, Any] = {
        **_key(status.device_id, c.ALERTS_KIND),
        c.STATE_VERSION: _n(version),
        c.EXPIRES_AT: _n(int(expires_at)),
        c.RAISED_ALERTS: {
            "M": {
                code: {
                    "M": {
                        "since": _n(alert.since),
                        "value": _n(alert.value),
                        "notified_at": _n(alert.notified_at),
                    }
                }
                for code, alert in status.raised.items()
            }
        },
    }
    if status.silent_since is not None:
        item[c.SILENT_SINCE] = _n(status.silent_since)
    if status.applied_through is not None:
        item[c.APPLIED_THROUGH] = _n(status.applied_through)
    if outbox is not None:
        item[c.ALERT_OUTBOX] = {"S": outbox}
    return item


def status_from_item(item: dict[str, Any]) -> DeviceStatus:
    """A device's status from its stored `alerts` item."""
    raised = {
        code: RaisedAlert(
            float(alert["M"]["since"]["N"]),
            float(alert["M"]["value"]["N"]),
            float(alert["M"]["notified_at"]["N"]),
        )
        for code, alert in item.get(c.RAISED_ALERTS, {}).get("M", {}).items()
    }
    silent = item.get(c.SILENT_SINCE)
    applied = item.get(c.APPLIED_THROUGH)
    return DeviceStatus(
        item[c.DEVICE_ID]["S"],
        raised,
        None if silent is None else float(silent["N"]),
        int(item[c.STATE_VERSION]["N"]),
        float(item.get(c.EXPIRES_AT, {}).get("N", 0)),
        None if applied is None else float(applied["N"]),
    )


@dataclass(frozen=True)
class DeviceRecord:
    """What the state table holds about one device (the silence check's view)."""

    device_id: str
    seen_at: float | None
    status: DeviceStatus


class AlertStateTable:
    """Reads and writes the state table, and asks the readings table what changes need."""

    def __init__(self, client: Any, table_name: str, readings_table: str) -> None:
        self._client = client
        self._table = table_name
        self._readings = readings_table

    # --- alerts items ----------------------------------------------------------------

    def statuses(self, device_ids: Sequence[str], deadline: Deadline) -> dict[str, DeviceStatus]:
        """The status of each device (strongly consistent: the last batch's writes are in
        it). Devices without an `alerts` item are quiet, version 0."""
        found = {d: DeviceStatus(d) for d in device_ids}
        for start in range(0, len(device_ids), BATCH_GET_LIMIT):
            keys = [_key(d, c.ALERTS_KIND) for d in device_ids[start : start + BATCH_GET_LIMIT]]
            for item in self._batch_get(keys, deadline):
                status = status_from_item(item)
                found[status.device_id] = status
        return found

    def _batch_get(self, keys: list[dict[str, Any]], deadline: Deadline) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request = {self._table: {"Keys": keys, "ConsistentRead": True}}
        attempt = 0
        while True:
            response = call_with_retries(
                partial(self._client.batch_get_item, RequestItems=request), deadline
            )
            items += response.get("Responses", {}).get(self._table, [])
            unprocessed = response.get("UnprocessedKeys") or {}
            if not unprocessed.get(self._table):
                return items
            if not wait_for_retry(attempt, deadline):
                raise TimeoutError("DynamoDB left keys unread until the deadline")
            attempt += 1
            request = unprocessed

    def status(self, device_id: str, deadline: Deadline) -> DeviceStatus:
        """One device's status, read now (strongly consistent)."""
        response = call_with_retries(
            lambda: self._client.get_item(
                TableName=self._table, Key=_key(device_id, c.ALERTS_KIND), ConsistentRead=True
            ),
            deadline,
        )
        item = response.get("Item")
        return DeviceStatus(device_id) if item is None else status_from_item(item)

    def save(
        self,
        status: DeviceStatus,
        expires_at: float,
        deadline: Deadline,
        outbox: str | None = None,
    ) -> bool:
        """Store `status`, and the `outbox` of the changes it records, over the version it
        was read as (one conditional put: the state and its events are stored together).

        Returns False when the stored item changed since it was read (someone else
        wrote it): the caller reads it again. Other errors raise after retries.
        """
        item = status_item(status, status.version + 1, expires_at, outbox)
        return self._put_over(item, status.version, deadline)

    # --- shard leases ----------------------------------------------------------------

    def lease_owner(self, shard: str, deadline: Deadline) -> tuple[str | None, int]:
        """Who processed the shard's last batch, and the lease's version (0: no lease)."""
        response = call_with_retries(
            partial(
                self._client.get_item,
                TableName=self._table,
                Key=_key(c.SHARD_KEY_PREFIX + shard, c.LEASE_KIND),
                ConsistentRead=True,
            ),
            deadline,
        )
        item = response.get("Item")
        if item is None:
            return None, 0
        return item[c.LEASE_OWNER]["S"], int(item[c.STATE_VERSION]["N"])

    def take_lease(self, shard: str, owner: str, version: int, deadline: Deadline) -> bool:
        """Name `owner` as the shard's processor over lease `version`; False when another
        took it meanwhile."""
        item = {
            **_key(c.SHARD_KEY_PREFIX + shard, c.LEASE_KIND),
            c.LEASE_OWNER: {"S": owner},
            c.STATE_VERSION: _n(version + 1),
        }
        return self._put_over(item, version, deadline)

    def _put_over(self, item: dict[str, Any], version: int, deadline: Deadline) -> bool:
        """Put `item` if the stored one is still `version` (0: if there is none); False when
        someone else wrote it meanwhile. Other errors raise after retries."""
        if version == 0:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#device)",
                "ExpressionAttributeNames": {"#device": c.DEVICE_ID},
            }
        else:
            condition = {
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": c.STATE_VERSION},
                "ExpressionAttributeValues": {":version": _n(version)},
            }
        try:
            call_with_retries(
                partial(self._client.put_item, TableName=self._table, Item=item, **condition),
                deadline,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --- seen items --------------------------------------------------------------------

    def seen(self, shard: str, deadline: Deadline) -> tuple[dict[str, float], int]:
        """When the shard's devices were last seen, as its `seen` items say, and how many
        items hold it."""
        seen: dict[str, float] = {}
        items = 0
        for page in self._pages(
            self._client.query,
            deadline,
            KeyConditionExpression="#key = :key AND begins_with(#kind, :seen)",
            ExpressionAttributeNames={"#key": c.DEVICE_ID, "#kind": c.STATE_KIND},
            ExpressionAttributeValues={
                ":key": {"S": c.SHARD_KEY_PREFIX + shard},
                ":seen": {"S": c.SEEN_KIND + "#"},
            },
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                items += 1
                _merge_seen(seen, item)
        return seen, items

    def save_seen(
        self,
        shard: str,
        seen: Mapping[str, float],
        stored_items: int,
        expires_at: float,
        deadline: Deadline,
    ) -> int:
        """Store the shard's `seen` items, one put each, and delete those beyond them that
        held it before (`stored_items`); returns how many items hold it now."""
        key = c.SHARD_KEY_PREFIX + shard
        texts = seen_texts(seen)
        for part, text in enumerate(texts):
            item = {
                **_key(key, _seen_kind(part)),
                c.SEEN_DEVICES: {"S": text},
                c.EXPIRES_AT: _n(int(expires_at)),
            }
            call_with_retries(
                partial(self._client.put_item, TableName=self._table, Item=item), deadline
            )
        for part in range(len(texts), stored_items):
            call_with_retries(
                partial(
                    self._client.delete_item,
                    TableName=self._table,
                    Key=_key(key, _seen_kind(part)),
                ),
                deadline,
            )
        return len(texts)

    def _pages(self, operation: Any, deadline: Deadline, **params: Any) -> Iterator[dict[str, Any]]:
        """The pages of a Query or Scan of the state table, each request retried."""
        start: dict[str, Any] = {}
        while True:
            page: dict[str, Any] = call_with_retries(
                partial(operation, TableName=self._table, **params, **start), deadline
            )
            yield page
            if "LastEvaluatedKey" not in page:
                return
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    # --- the whole table (silence check) ----------------------------------------------

    def devices(self, deadline: Deadline) -> Iterator[DeviceRecord]:
        """Every device the table knows, with when it was last seen (on any shard) and its
        status."""
        seen: dict[str, float] = {}
        statuses: dict[str, DeviceStatus] = {}
        for page in self._pages(self._client.scan, deadline):
            for item in page.get("Items", []):
                kind = item[c.STATE_KIND]["S"]
                if kind.startswith(c.SEEN_KIND + "#"):
                    _merge_seen(seen, item)
                elif kind == c.ALERTS_KIND:
                    status = status_from_item(item)
                    statuses[status.device_id] = status
        for device_id in sorted(seen.keys() | statuses.keys()):
            yield DeviceRecord(
                device_id, seen.get(device_id), statuses.get(device_id, DeviceStatus(device_id))
            )

    # --- the readings table -----------------------------------------------------------

    def newest_before(
        self, device_id: str, batch_sequences: frozenset[str], in_batch: int, deadline: Deadline
    ) -> float | None:
        """The newest reading time the device had sent before this batch (None: none).

        The table may already hold this batch's own readings (written alongside, or by
        an earlier attempt of the same batch): they are told apart by their sequence
        numbers. Reading the newest `in_batch + 1` items is enough, since at most
        `in_batch` of them can be the batch's own.
        """
        response = call_with_retries(
            lambda: self._client.query(
                TableName=self._readings,
                KeyConditionExpression="#device = :device",
                ExpressionAttributeNames={
                    "#device": c.DEVICE_ID,
                    "#time": c.TIMESTAMP,
                    "#sequence": c.SEQUENCE_NUMBER,
                },
                ExpressionAttributeValues={":device": {"S": device_id}},
                ProjectionExpression="#time, #sequence",
                ScanIndexForward=False,
                Limit=in_batch + 1,
                ConsistentRead=True,
            ),
            deadline,
        )
        for item in response.get("Items", []):
            if item.get(c.SEQUENCE_NUMBER, {}).get("S") not in batch_sequences:
                return float(item[c.TIMESTAMP]["N"])
        return None

    def last_stored(self, device_id: str, deadline: Deadline) -> float | None:
        """When the device's newest reading (by reading time) was stored (None: none is)."""
        response = call_with_retries(
            lambda: self._client.query(
                TableName=self._readings,
                KeyConditionExpression="#device = :device",
                ExpressionAttributeNames={"#device": c.DEVICE_ID, "#ingested": c.INGESTED_AT},
                ExpressionAttributeValues={":device": {"S": device_id}},
                ProjectionExpression="#ingested",
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            ),
            deadline,
        )
        items = response.get("Items", [])
        return float(items[0][c.INGESTED_AT]["N"]) if items else None


def _merge_seen(seen: dict[str, float], item: dict[str, Any]) -> None:
    """Add a `seen` item's times to `seen`, keeping each device's latest (a device is on two
    shards' items after the stream is resharded)."""
    for device_id, seen_at in json.loads(item[c.SEEN_DEVICES]["S"]).items():
        if seen_at > seen.get(device_id, 0.0):
            seen[device_id] = seen_at
