"""DynamoDB exports to S3 as AWS makes them: full and incremental, with manifests.

moto's `ExportTableToPointInTime` ignores `ExportType`, writes one data file of
the table as it is now and no manifests. The local cloud answers the same three
calls (`ExportTableToPointInTime`, `DescribeExport`, `ListExports`) the way
DynamoDB does, from a change journal of every write to a table.

The change journal
    Every write that reaches moto's table while point-in-time recovery (PITR)
    is on (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems,
    PartiQL: they all end in `Table.put_item`, `Table.delete_item` or
    `DynamoDBBackend.update_item`) is recorded with its write time in
    microseconds, the item's keys, its new image and its old image. The journal
    is an attribute of moto's table object, so it lives, is copied (a
    transaction's rollback restores it with the table) and is snapshotted with
    moto's state. It holds the PITR window (`RecoveryPeriodInDays`, 35 by
    default): full segments are compressed and dropped once older than the
    window. Writes are applied and recorded under one lock per table, and write
    times only grow, so the journal's order is the order of the writes. The
    local cloud deletes nothing by TTL (moto expires nothing), so there are no
    TTL deletes to record; a delete of a missing item changes nothing and is
    not recorded.

What AWS does, and where each fact comes from
    - Layout (DynamoDB developer guide, "DynamoDB table export output format";
      data objects and checksum files as real exports have them): under
      `<S3Prefix>/AWSDynamoDB/<ExportId>/` an empty `_started`,
      `manifest-summary.json`, `manifest-files.json` and their `.md5` files
      (base64 MD5 of the manifest; the guide calls them `.checksum`, real
      exports name them `.md5`). Full exports keep their data files in
      `<ExportId>/data/`; incremental exports write theirs to the folder all
      incremental exports share, `<S3Prefix>/AWSDynamoDB/data/`, and only the
      manifests tell which belong to which export. Every key written
      (`manifestFilesS3Key`, `dataFileS3Key`, `ExportManifest`) is the full key
      from the bucket's root, prefix included.
    - `manifest-files.json`: one JSON line per data file, `itemCount`,
      `md5Checksum` (base64 MD5 of the file), `etag`, `dataFileS3Key`. A data
      file is gzipped JSON lines; an export of nothing still writes one (empty)
      data file, as AWS writes one per partition, empty ones included.
    - `manifest-summary.json`: version `2020-06-30` for full exports (no
      `exportType`), `2023-08-01` for incremental ones, which add
      `exportFromTime`, `exportToTime`, `outputView` and
      `exportType: INCREMENTAL_EXPORT`.
    - Lines: full `{"Item": {...}}` as of `ExportTime` (default: the request's
      time); incremental
      `{"Metadata":{"WriteTimestampMicros":{"N":..}},"Keys":..,"NewImage":..,"OldImage":..}`,
      one line per item changed in `[ExportFromTime, ExportToTime)` with its
      state at the end of the window and, with `NEW_AND_OLD_IMAGES`, its state
      at the start: an insert has no OldImage, a delete no NewImage, and an item
      inserted and deleted inside the window has no line. With `NEW_IMAGE` a
      delete is its keys alone. `WriteTimestampMicros` is the last write's.
    - Errors (as DynamoDB answers them, HTTP 400, before anything is written):
      no PITR on a full export: `PointInTimeRecoveryUnavailableException`;
      `ExportTime` outside the PITR window or ahead of now:
      `InvalidExportTimeException` "Export Time is invalid"; every window
      violation of an incremental export is `InvalidExportTimeException`,
      checked in this order: `ExportFromTime` before PITR's earliest
      restorable time (a table without PITR has none), `ExportToTime` ahead of
      now, a window under 15 minutes, over 24 hours (this last message is
      written in the same words as the others; it was not observed); a
      missing or contradictory `ExportType`/`IncrementalExportSpecification`
      is a `ValidationException`. A missing bucket is accepted and the export
      ends FAILED with `FailureCode` `S3NoSuchBucket`. A `ClientToken` reused
      with other parameters is `ExportConflictException`; reused with the same
      ones it returns the same export.
    - `DescribeExport`: IN_PROGRESS, then COMPLETED or FAILED; `ItemCount`,
      `BilledSizeBytes`, `ExportManifest` and `EndTime` appear when it ends. An
      incremental export bills its change data with a 10,000,000-byte minimum
      (DynamoDB reports `BilledSizeBytes` 10000000 for an empty one); here
      change data is counted as the UTF-8 size of the written images' DynamoDB
      JSON, a full export as the size of the items exported. `ExportType` is
      echoed for incremental exports only (DynamoDB leaves it out of a full
      export's description). `ListExports` lists the newest first and leaves
      out exports of a table since deleted or re-created.

What a caller should know (all of it as in DynamoDB)
    - A table whose PITR was just turned on has no incremental window for 15
      minutes (the window must start after PITR was on and last 15 minutes).
      Tests move the clock instead of waiting (time-machine; see
      `tests/local_cloud/test_dynamodb_exports.py`): the emulator reads the same
      clock.
    - Read an incremental export's data files from its manifest: the `data/`
      folder under the prefix also holds every other incremental export's files.
    - `BilledSizeBytes` of an incremental export is at least 10,000,000; the
      bytes actually exported are the data files' sizes.

The API call returns at once (IN_PROGRESS) and the export is written on a
thread of its own, gzipping its data files on a second one: 1,000,000 items
take a few seconds, because each item's DynamoDB JSON is kept beside it when it
is written (and refreshed by UpdateItem, the one call that changes an item in
place) instead of being rebuilt for every export.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import hashlib
import json
import logging
import marshal
import os
import secrets
import threading
import time
import uuid
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from local_cloud import moto_internals

log = logging.getLogger(__name__)

FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"
NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"
NEW_IMAGE = "NEW_IMAGE"
DYNAMODB_JSON = "DYNAMODB_JSON"
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"

#: An incremental export covers 15 minutes to 24 hours of write time.
MIN_WINDOW_US = 15 * 60 * 1_000_000
MAX_WINDOW_US = 24 * 3600 * 1_000_000
#: What DynamoDB bills an incremental export at least (and reports as BilledSizeBytes).
INCREMENTAL_MINIMUM_BILLED_BYTES = 10_000_000
#: PITR's window when the table does not say (DynamoDB's default and maximum).
DEFAULT_RECOVERY_DAYS = 35
#: Items per data file: a few files for a large table, one for a small one.
ITEMS_PER_DATA_FILE = 250_000
#: gzip level of the data files: fast, since nothing here pays for bytes stored.
GZIP_LEVEL = 3
#: How long DynamoDB holds a ClientToken to its export.
CLIENT_TOKEN_US = 8 * 3600 * 1_000_000

_SUMMARY_VERSION = {FULL_EXPORT: "2020-06-30", INCREMENTAL_EXPORT: "2023-08-01"}
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
#: The attribute of a moto Item holding its image as DynamoDB JSON text. A snapshot of
#: moto's state that keeps it spares the first full export after a restore from building
#: every item's line again (about 10 µs an item).
IMAGE_ATTRIBUTE = "_local_cloud_image_json"
#: The attributes of a moto Table holding its change journal and its id.
_JOURNAL_ATTR = "_local_cloud_change_journal"
_TABLE_ID_ATTR = "_local_cloud_table_id"

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
#: A JSON string literal, as _ENCODE writes one.
_quote = json.encoder.encode_basestring
# Writes that are part of one UpdateItem (moto creates a new item with put_item first)
# are recorded once, by the UpdateItem.
_inside_update = threading.local()


class ExportError(Exception):
    """A DynamoDB error answered with HTTP 400, named and worded as DynamoDB does."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_api_error(self) -> Exception:
        """The error as moto answers it (`__type` and `message`)."""
        return moto_internals.client_error(_ERROR_PREFIX + self.code, self.message)


def _validation(message: str) -> ExportError:
    return ExportError("ValidationException", message)


def _invalid_time(message: str) -> ExportError:
    return ExportError("InvalidExportTimeException", message)


# --- images as DynamoDB JSON ----------------------------------------------------------


def _attribute(value: Any) -> dict[str, Any]:
    """One moto DynamoType as a DynamoDB JSON attribute value."""
    kind, inner = moto_internals.value_parts(value)
    if kind == "M":
        return {"M": {name: _attribute(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [_attribute(member) for member in inner]}
    if kind == "B" and isinstance(inner, bytes):
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in inner]}
    return {kind: inner}


def _member(name: str, value: Any) -> str:
    """`"name":{"T":...}`: strings and numbers written directly (the common case, and
    cheaper than building a dict to encode), the rest encoded."""
    kind, inner = moto_internals.value_parts(value)
    if (kind == "S" or kind == "N") and type(inner) is str:
        return f'{_quote(name)}:{{"{kind}":{_quote(inner)}}}'
    return f"{_quote(name)}:{_ENCODE(_attribute(value))}"


def image_json(item: Any) -> str:
    """The item's attributes as DynamoDB JSON text, kept on the item for the next export."""
    text = known_image(item)
    if text is None:
        attributes = moto_internals.item_attributes(item)
        text = "{" + ",".join([_member(n, v) for n, v in attributes.items()]) + "}"
        remember_image(item, text)
    return text


def forget_image(item: Any) -> None:
    """Drop the item's kept DynamoDB JSON (it is about to change, or a test wants none)."""
    moto_internals.private_state(item).pop(IMAGE_ATTRIBUTE, None)


def known_image(item: Any) -> str | None:
    """The item's image as DynamoDB JSON text when it is kept on the item, else None.

    It is kept from the item's write on and dropped whenever moto changes the item in
    place (`update_item`), so when present it is the item's attributes now.
    """
    text: str | None = moto_internals.private_state(item).get(IMAGE_ATTRIBUTE)
    return text


def remember_image(item: Any, text: str) -> None:
    """Keep `text` (the item's attributes as DynamoDB JSON) as the item's image."""
    moto_internals.private_state(item)[IMAGE_ATTRIBUTE] = text


def keys_json(table: Any, item: Any) -> str:
    """The item's primary key attributes as DynamoDB JSON text."""
    hash_name, range_name = moto_internals.table_key_names(table)
    hash_value, range_value = moto_internals.item_keys(item)
    members = [_member(hash_name, hash_value)]
    if range_name is not None and range_value is not None:
        members.append(_member(range_name, range_value))
    return "{" + ",".join(members) + "}"


def _image_and_keys(table: Any, item: Any) -> tuple[str, str]:
    """The item's image (made afresh and kept on it) and its primary key, as DynamoDB JSON."""
    forget_image(item)
    return image_json(item), keys_json(table, item)


# --- the change journal ---------------------------------------------------------------

#: One write: (write time in µs, keys, new image or None, old image or None); JSON text.
Change = tuple[int, str, str | None, str | None]


class _Segment(NamedTuple):
    first_us: int
    last_us: int
    writes: int
    blob: bytes  # zlib(marshal(list of Change))


def _now_us() -> int:
    return time.time_ns() // 1000


class ChangeJournal:
    """Every write to one table while PITR is on, in write order.

    The newest writes are kept as they are; every `SEGMENT` of them is sealed
    into one compressed segment, 25 to 35 bytes a write for readings (measured by
    `benchmarks/bench_dynamodb_exports.py`), so a 35-day window of a million writes
    costs a few tens of megabytes.
    """

    SEGMENT = 4096

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._open: list[Change] = []
        self._sealed: list[_Segment] = []
        self._last_us = 0

    def __getstate__(self) -> dict[str, Any]:
        with self.lock:
            return {"open": list(self._open), "sealed": list(self._sealed), "last": self._last_us}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.lock = threading.RLock()
        self._open = state["open"]
        self._sealed = state["sealed"]
        self._last_us = state["last"]

    def __deepcopy__(self, memo: dict[int, Any]) -> ChangeJournal:
        # Changes are immutable: a copy shares them (moto copies tables for transactions).
        copy = ChangeJournal.__new__(ChangeJournal)
        copy.__setstate__(self.__getstate__())
        return copy

    def __len__(self) -> int:
        with self.lock:
            return len(self._open) + sum(s.writes for s in self._sealed)

    def compressed_bytes(self) -> int:
        """Bytes the sealed (compressed) segments take."""
        with self.lock:
            return sum(len(s.blob) for s in self._sealed)

    def record(self, keys: str, new: str | None, old: str | None, horizon_us: int) -> int:
        """Append one write; returns its write time. Segments wholly before `horizon_us`
        (the start of the PITR window) are dropped."""
        with self.lock:
            written = max(_now_us(), self._last_us + 1)
            self._last_us = written
            self._open.append((written, keys, new, old))
            if len(self._open) >= self.SEGMENT:
                batch = self._open
                self._sealed.append(
                    _Segment(
                        batch[0][0],
                        batch[-1][0],
                        len(batch),
                        zlib.compress(marshal.dumps(batch), 1),
                    )
                )
                self._open = []
                while self._sealed and self._sealed[0].last_us < horizon_us:
                    self._sealed.pop(0)
            return written

    def changes(self, start_us: int, end_us: int | None = None) -> Iterator[Change]:
        """The writes with `start_us <= time < end_us` (no end: up to now), oldest first."""
        with self.lock:
            sealed = list(self._sealed)
            recent = list(self._open)
        first = bisect_left([s.last_us for s in sealed], start_us)
        for segment in sealed[first:]:
            if end_us is not None and segment.first_us >= end_us:
                return
            yield from _between(marshal.loads(zlib.decompress(segment.blob)), start_us, end_us)
        yield from _between(recent, start_us, end_us)


def _between(batch: list[Change], start_us: int, end_us: int | None) -> Iterator[Change]:
    for change in batch:
        if change[0] < start_us:
            continue
        if end_us is not None and change[0] >= end_us:
            return
        yield change


def _pitr(table: Any) -> dict[str, Any]:
    return moto_internals.pitr_description(table)


def pitr_enabled(table: Any) -> bool:
    """Whether point-in-time recovery is on for the table."""
    return _pitr(table).get("PointInTimeRecoveryStatus") == "ENABLED"


def _recovery_us(table: Any) -> int:
    days = int(_pitr(table).get("RecoveryPeriodInDays") or DEFAULT_RECOVERY_DAYS)
    return days * 86400 * 1_000_000


def earliest_restorable_us(table: Any, now_us: int) -> int | None:
    """The oldest write time PITR still covers (None without PITR): when it was turned
    on, or the start of its window, whichever is later."""
    if not pitr_enabled(table):
        return None
    enabled = _pitr(table).get("EarliestRestorableDateTime")
    enabled_us = _to_us(enabled) if enabled is not None else 0
    return max(enabled_us, now_us - _recovery_us(table))


def journal_of(table: Any) -> ChangeJournal | None:
    """The table's change journal while PITR is on; without PITR, none (and the history
    is gone, as it is in DynamoDB when PITR is turned off)."""
    state = moto_internals.private_state(table)
    if not pitr_enabled(table):
        state.pop(_JOURNAL_ATTR, None)
        return None
    journal: ChangeJournal | None = state.get(_JOURNAL_ATTR)
    if journal is None:
        journal = state.setdefault(_JOURNAL_ATTR, ChangeJournal())
    return journal


def table_id(table: Any) -> str:
    """The table's id (DynamoDB's TableId), made once per table."""
    value: str = moto_internals.private_state(table).setdefault(_TABLE_ID_ATTR, str(uuid.uuid4()))
    return value


def _record(
    journal: ChangeJournal, table: Any, keys: str, new: str | None, old: str | None
) -> None:
    journal.record(keys, new, old, _now_us() - _recovery_us(table))


# --- the write hooks (installed by moto_patches, with moto's own method first) --------


def _key_value(attribute: dict[str, Any]) -> Any:
    """A moto value for a key attribute, without the checks moto's constructor makes
    (moto's own put_item makes them, and answers a malformed key with the proper error)."""
    ((kind, inner),) = attribute.items()
    return moto_internals.new_value(kind, inner)


def _current_item(table: Any, item_attrs: dict[str, Any]) -> Any:
    """The item now stored under the keys of `item_attrs`, if the keys make sense."""
    hash_name, range_name = moto_internals.table_key_names(table)
    try:
        range_value = _key_value(item_attrs[range_name]) if range_name is not None else None
        return moto_internals.stored_item(table, _key_value(item_attrs[hash_name]), range_value)
    except Exception:  # moto's own put_item answers malformed keys with the proper error
        return None


def put_item(
    put: Callable[..., Any], table: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any
) -> Any:
    """moto's `Table.put_item` (`put`), recorded in the table's change journal."""
    journal = journal_of(table)
    if journal is None or getattr(_inside_update, "active", False):
        return put(table, item_attrs, *args, **kwargs)
    with journal.lock:
        before = _current_item(table, item_attrs)
        item = put(table, item_attrs, *args, **kwargs)
        old = image_json(before) if before is not None else None
        try:
            # The request's attributes are the item's, already DynamoDB JSON: one encode.
            new = _ENCODE(item_attrs)
            hash_name, range_name = moto_internals.table_key_names(table)
            names = [hash_name, *([range_name] if range_name else [])]
            keys = _ENCODE({name: item_attrs[name] for name in names})
            remember_image(item, new)
        except TypeError:  # binary values: moto keeps bytes, the image needs base64
            new, keys = _image_and_keys(table, item)
        _record(journal, table, keys, new, old)
    return item


def delete_item(delete: Callable[..., Any], table: Any, hash_key: Any, range_key: Any) -> Any:
    """moto's `Table.delete_item` (`delete`), recorded when it removed an item."""
    journal = journal_of(table)
    if journal is None:
        return delete(table, hash_key, range_key)
    with journal.lock:
        item = delete(table, hash_key, range_key)
        if item is not None:
            _record(journal, table, keys_json(table, item), None, image_json(item))
    return item


def update_item(
    update: Callable[..., Any],
    backend: Any,
    table_name: str,
    key: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """moto's `DynamoDBBackend.update_item` (`update`, which changes the item in place),
    recorded once with the image before and after."""
    table = moto_internals.dynamodb_table(backend, table_name)
    journal = journal_of(table)
    try:
        before = moto_internals.item_at_key(backend, table, key)
    except Exception:  # moto's own update_item answers a malformed key with the proper error
        before = None
    lock = journal.lock if journal is not None else contextlib.nullcontext()
    with lock:
        old = image_json(before) if before is not None and journal is not None else None
        if before is not None:
            forget_image(before)  # its attributes are about to change in place
        _inside_update.active = True
        try:
            item = update(backend, table_name, key, *args, **kwargs)
        finally:
            _inside_update.active = False
        if journal is not None:
            new, keys = _image_and_keys(table, item)
            _record(journal, table, keys, new, old)
    return item


# --- exports --------------------------------------------------------------------------


def _to_us(value: Any) -> int:
    """A request's or moto's timestamp (naive UTC datetime, aware datetime, epoch seconds)
    in epoch microseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return calendar.timegm(value.timetuple()) * 1_000_000 + value.microsecond
    return round(float(value) * 1_000_000)


def _datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _iso(us: int) -> str:
    """`2020-11-04T07:28:34.028Z`, as the manifests write times."""
    moment = _datetime(us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso_seconds(us: int) -> str:
    """`2026-10-09T00:41:50Z`, as DynamoDB's error messages write times."""
    return _datetime(us).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TableExport:
    """One export: what was asked, how far it got, and what it wrote."""

    arn: str
    table_arn: str
    table_name: str
    table_id: str
    client_token: str
    s3_bucket: str
    s3_bucket_owner: str | None
    s3_prefix: str | None
    s3_sse_algorithm: str
    s3_sse_kms_key_id: str | None
    export_format: str
    export_type: str
    start_us: int
    export_time_us: int | None
    from_us: int | None = None
    to_us: int | None = None
    view_type: str | None = None
    status: str = IN_PROGRESS
    end_us: int | None = None
    item_count: int | None = None
    billed_size_bytes: int | None = None
    manifest_key: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    #: The request's parameters, compared when its ClientToken comes again.
    request: dict[str, Any] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Restored from a snapshot of the local cloud: the thread writing it is gone.
        self.__dict__.update(state)
        if self.status == IN_PROGRESS:
            self.status = FAILED
            self.failure_code = "UNKNOWN"
            self.failure_message = "the local cloud stopped while the export was being written"

    @property
    def export_id(self) -> str:
        """`01791506414432-3f2e5aa4`: the start time in milliseconds and a random part."""
        return self.arn.rsplit("/", 1)[1]

    @property
    def folder(self) -> str:
        """`<prefix>/AWSDynamoDB/`, where DynamoDB writes everything of an export."""
        prefix = (self.s3_prefix or "").rstrip("/")
        return f"{prefix}/AWSDynamoDB/" if prefix else "AWSDynamoDB/"

    def description(self) -> dict[str, Any]:
        """`ExportDescription`, with the members DynamoDB fills at this stage."""
        data: dict[str, Any] = {
            "ExportArn": self.arn,
            "ExportStatus": self.status,
            "StartTime": _datetime(self.start_us),
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "ClientToken": self.client_token,
            "S3Bucket": self.s3_bucket,
            "S3SseAlgorithm": self.s3_sse_algorithm,
            "ExportFormat": self.export_format,
        }
        optional = {
            "S3BucketOwner": self.s3_bucket_owner,
            "S3Prefix": self.s3_prefix,
            "S3SseKmsKeyId": self.s3_sse_kms_key_id,
            "FailureCode": self.failure_code,
            "FailureMessage": self.failure_message,
            "ExportManifest": self.manifest_key,
            "ItemCount": self.item_count,
            "BilledSizeBytes": self.billed_size_bytes,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        if self.export_time_us is not None:
            data["ExportTime"] = _datetime(self.export_time_us)
        if self.end_us is not None:
            data["EndTime"] = _datetime(self.end_us)
        if self.export_type == INCREMENTAL_EXPORT:
            assert self.from_us is not None and self.to_us is not None
            data["ExportType"] = INCREMENTAL_EXPORT
            data["IncrementalExportSpecification"] = {
                "ExportFromTime": _datetime(self.from_us),
                "ExportToTime": _datetime(self.to_us),
                "ExportViewType": self.view_type,
            }
        return data

    def summary(self) -> dict[str, Any]:
        """`ExportSummary`, as ListExports gives it."""
        return {"ExportArn": self.arn, "ExportStatus": self.status, "ExportType": self.export_type}


def _exports(backend: Any) -> dict[str, Any]:
    return moto_internals.table_exports(backend)


def _table_by_arn(backend: Any, table_arn: str) -> Any:
    if not table_arn.startswith("arn:"):
        raise _validation("One or more parameter values were invalid: tableArn is not a valid ARN")
    for table in moto_internals.dynamodb_tables(backend):
        if moto_internals.table_arn(table) == table_arn:
            return table
    raise ExportError("TableNotFoundException", f"Table not found: {table_arn}")


def _enum(value: Any, member: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _check_window(table: Any, spec: dict[str, Any], now_us: int) -> tuple[int, int, str]:
    """The incremental window [from, to) and view type DynamoDB would accept, or its error."""
    view = spec.get("ExportViewType") or NEW_AND_OLD_IMAGES
    _enum(view, "incrementalExportSpecification.exportViewType", (NEW_IMAGE, NEW_AND_OLD_IMAGES))
    if spec.get("ExportFromTime") is None:
        raise _validation(
            "Invalid Request: ExportFromTime must be provided in IncrementalExportSpecification"
        )
    start = _to_us(spec["ExportFromTime"])
    # Without ExportToTime, DynamoDB takes the latest time it has data for: now.
    end = _to_us(spec["ExportToTime"]) if spec.get("ExportToTime") is not None else now_us
    earliest = earliest_restorable_us(table, now_us)
    if earliest is None or start < earliest:
        raise _invalid_time(
            "Incremental export period from time cannot be less than the table creation "
            f"time : {_iso_seconds(start)}"
        )
    if end > now_us:
        raise _invalid_time(
            "Incremental export period to time cannot be greater than the current time : "
            f"{_iso_seconds(end)}"
        )
    if end - start < MIN_WINDOW_US:
        raise _invalid_time(
            "Difference between export period from time and export period to time is less "
            "than 15 minutes"
        )
    if end - start > MAX_WINDOW_US:
        raise _invalid_time(
            "Difference between export period from time and export period to time is greater "
            "than 24 hours"
        )
    return start, end, view


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The request as compared for a repeated ClientToken (times in µs)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return _to_us(value) if isinstance(value, datetime) else value

    return {k: plain(v) for k, v in body.items() if k != "ClientToken"}


def start_export(backend: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Validate an `ExportTableToPointInTime` request as DynamoDB does and start the export.

    Returns the `ExportDescription` the call answers: taken before the export's thread
    starts, so a small export that finishes at once is still IN_PROGRESS in the answer
    to the call that started it, as on DynamoDB.
    """
    now = _now_us()
    export_type = body.get("ExportType")
    spec = body.get("IncrementalExportSpecification")
    export_format = body.get("ExportFormat") or DYNAMODB_JSON
    if export_type is not None:
        _enum(export_type, "exportType", (FULL_EXPORT, INCREMENTAL_EXPORT))
    _enum(export_format, "exportFormat", ("ION", DYNAMODB_JSON))
    if spec is not None and export_type is None:
        raise _validation(
            "Invalid Request: Export Type expected to be Incremental Export when incremental "
            "export specification is provided"
        )
    if spec is not None and export_type == FULL_EXPORT:
        raise _validation(
            "Invalid Request: When Export Type is Full Export , Incremental Export "
            "Specification should not be provided"
        )
    if export_type == INCREMENTAL_EXPORT and spec is None:
        raise _validation(
            "Invalid Request: Incremental Export Specification expected when export type is set "
            "as Incremental Export"
        )
    if not body.get("S3Bucket"):
        raise _validation(
            "1 validation error detected: Value '' at 's3Bucket' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$"
        )
    token = body.get("ClientToken") or str(uuid.uuid4())
    request = _comparable(body)
    for earlier in list(_exports(backend).values()):
        if (
            isinstance(earlier, TableExport)
            and earlier.client_token == token
            and now - earlier.start_us < CLIENT_TOKEN_US
        ):
            if earlier.request != request:
                raise ExportError(
                    "ExportConflictException",
                    "Export conflict: Duplicate request detected with conflicting parameters",
                )
            return earlier.description()
    table = _table_by_arn(backend, body.get("TableArn") or "")
    incremental = export_type == INCREMENTAL_EXPORT
    window: tuple[int, int, str] | None = None
    export_time: int | None = None
    if incremental:
        assert spec is not None
        window = _check_window(table, spec, now)
        if body.get("ExportTime") is not None:
            raise _validation(
                "Invalid Request: ExportTime should not be provided when Export Type is "
                "Incremental Export"
            )
    else:
        if not pitr_enabled(table):
            raise ExportError(
                "PointInTimeRecoveryUnavailableException",
                "Point in time recovery is not enabled for table "
                f"'{moto_internals.table_name(table)}'",
            )
        export_time = _to_us(body["ExportTime"]) if body.get("ExportTime") is not None else now
        earliest = earliest_restorable_us(table, now)
        if earliest is None or not earliest <= export_time <= now:
            raise _invalid_time("Export Time is invalid")
    if export_format != DYNAMODB_JSON:
        raise _validation(
            f"ExportFormat {export_format} is not implemented by the local cloud, which writes "
            f"{DYNAMODB_JSON} exports only"
        )
    export_id = f"{now // 1000:014d}-{secrets.token_hex(4)}"
    export = TableExport(
        arn=f"{moto_internals.table_arn(table)}/export/{export_id}",
        table_arn=moto_internals.table_arn(table),
        table_name=moto_internals.table_name(table),
        table_id=table_id(table),
        client_token=token,
        s3_bucket=body["S3Bucket"],
        s3_bucket_owner=body.get("S3BucketOwner"),
        s3_prefix=body.get("S3Prefix"),
        s3_sse_algorithm=body.get("S3SseAlgorithm") or "AES256",
        s3_sse_kms_key_id=body.get("S3SseKmsKeyId"),
        export_format=export_format,
        export_type=INCREMENTAL_EXPORT if incremental else FULL_EXPORT,
        start_us=now,
        export_time_us=export_time,
        from_us=window[0] if window else None,
        to_us=window[1] if window else None,
        view_type=window[2] if window else None,
        request=request,
    )
    _exports(backend)[export.arn] = export
    backend_account, _region, partition = moto_internals.backend_location(backend)
    account = export.s3_bucket_owner or backend_account
    started = export.description()
    threading.Thread(
        target=_write_export,
        args=(export, table, account, partition),
        name=f"dynamodb-export-{export_id}",
        daemon=True,
    ).start()
    return started


def describe(backend: Any, export_arn: str) -> TableExport:
    """The export behind `export_arn`, or DynamoDB's ExportNotFoundException."""
    export = _exports(backend).get(export_arn)
    if not isinstance(export, TableExport):
        if "/export/" not in (export_arn or ""):
            raise _validation("Invalid Export ARN")
        raise ExportError("ExportNotFoundException", f"Export not found: {export_arn}")
    return export


def listed(backend: Any, table_arn: str | None) -> list[TableExport]:
    """Exports of existing tables (of `table_arn` if given), newest first."""
    live = {
        moto_internals.table_arn(table): table_id(table)
        for table in moto_internals.dynamodb_tables(backend)
    }
    exports = [
        e
        for e in list(_exports(backend).values())
        if isinstance(e, TableExport)
        and live.get(e.table_arn) == e.table_id
        and (table_arn is None or e.table_arn == table_arn)
    ]
    return sorted(exports, key=lambda e: e.export_id, reverse=True)


# --- writing an export ----------------------------------------------------------------


@dataclass
class _Records:
    """An export's data lines: `head + record + tail` each, so a file of many is one join."""

    records: list[str]
    head: str
    tail: str
    billed_bytes: int

    def text(self, records: list[str]) -> bytes:
        """The lines of `records`, each newline-terminated, as UTF-8."""
        if not records:
            return b""
        joint = self.tail + self.head
        return (self.head + joint.join(records) + self.tail).encode()


def _plain(value: Any) -> Any:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


def _raw_key(item: Any) -> tuple[Any, Any]:
    """The item's key values as its DynamoDB JSON writes them (binary ones in base64)."""
    hash_key, range_key = moto_internals.item_keys(item)
    range_value = (
        _plain(moto_internals.value_parts(range_key)[1]) if range_key is not None else None
    )
    return (_plain(moto_internals.value_parts(hash_key)[1]), range_value)


def _raw_key_of(table: Any, keys: str) -> tuple[Any, Any]:
    attributes = json.loads(keys)
    hash_name, range_name = moto_internals.table_key_names(table)
    (hash_value,) = attributes[hash_name].values()
    range_value = None
    if range_name is not None:
        (range_value,) = attributes[range_name].values()
    return (hash_value, range_value)


def _full_records(export: TableExport, table: Any) -> _Records:
    """The table as of the export time: one `{"Item": ...}` line per item."""
    assert export.export_time_us is not None
    journal = journal_of(table)
    lock = journal.lock if journal is not None else threading.RLock()
    scanned = moto_internals.table_items(table)
    kept: list[str | None] = [known_image(item) for item in scanned]
    if None in kept:  # items written while PITR was off, or restored from a snapshot
        for position, item in enumerate(scanned):
            if kept[position] is None:
                with lock:  # writers change items under this lock: never read one half-changed
                    kept[position] = image_json(item)
    images = cast(list[str], kept)  # no None is left
    # Writes at or after the export time are undone: an item changed since then is
    # exported as its first later change found it (or not at all if that change made it).
    # The journal is read after the scan, and its lock waits for writes applied during
    # the scan to be recorded, so every change the scan could have seen is undone.
    undo: dict[tuple[Any, Any], str | None] = {}
    if journal is not None:
        for _, keys, _, old in journal.changes(export.export_time_us):
            undo.setdefault(_raw_key_of(table, keys), old)
    if undo:
        images = [
            image for item, image in zip(scanned, images, strict=True) if _raw_key(item) not in undo
        ]
        images += [old for old in undo.values() if old is not None]
    return _Records(images, '{"Item":', "}\n", sum(map(len, images)))


def _incremental_records(export: TableExport, table: Any) -> _Records:
    """One line per item changed in the window: its state at the end and, with
    NEW_AND_OLD_IMAGES, at the start."""
    assert export.from_us is not None and export.to_us is not None
    journal = journal_of(table)
    # keys -> [write time of the last change, image at the window's start, image at its end]
    states: dict[str, list[Any]] = {}
    processed = 0
    # Every write before the window's end (in the past when the export was asked for)
    # is already in the journal.
    for written, keys, new, old in journal.changes(export.from_us, export.to_us) if journal else ():
        processed += len(new or old or "")
        state = states.get(keys)
        if state is None:
            states[keys] = [written, old, new]
        else:
            state[0] = written
            state[2] = new
    with_old = export.view_type == NEW_AND_OLD_IMAGES
    lines = []
    for keys, (written, start, end) in states.items():
        if start is None and end is None:
            continue  # inserted and deleted inside the window
        line = f'{{"Metadata":{{"WriteTimestampMicros":{{"N":"{written}"}}}},"Keys":{keys}'
        if end is not None:
            line += f',"NewImage":{end}'
        if with_old and start is not None:
            line += f',"OldImage":{start}'
        lines.append(line + "}\n")
    return _Records(lines, "", "", max(processed, INCREMENTAL_MINIMUM_BILLED_BYTES))


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
    return packer.compress(data) + packer.flush()


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _data_file_name() -> str:
    """A 26-character lower-case base32 name, like DynamoDB's data files."""
    return base64.b32encode(os.urandom(16)).decode().lower()[:26] + ".json.gz"


def _chunks(records: list[str]) -> Iterator[list[str]]:
    """A few files of at most ITEMS_PER_DATA_FILE records each; one (empty) file for none."""
    files = max(1, -(-len(records) // ITEMS_PER_DATA_FILE))
    step = max(1, -(-len(records) // files))
    yield records[:step]
    for start in range(step, len(records), step):
        yield records[start : start + step]


def _write_export(export: TableExport, table: Any, account: str, partition: str) -> None:
    """Write the export's objects to S3 and mark it COMPLETED (or FAILED and why)."""
    s3 = moto_internals.s3_backend(account, partition)
    if not moto_internals.s3_bucket_exists(s3, export.s3_bucket):
        _fail(
            export,
            "S3NoSuchBucket",
            "The specified bucket does not exist (Service: Amazon S3; Status Code: 404; "
            "Error Code: NoSuchBucket)",
        )
        return
    try:
        base = export.folder + export.export_id + "/"
        moto_internals.s3_put_object(s3, export.s3_bucket, base + "_started", b"")
        if export.export_type == INCREMENTAL_EXPORT:
            records = _incremental_records(export, table)
            data_folder = export.folder + "data/"  # shared by every incremental export
        else:
            records = _full_records(export, table)
            data_folder = base + "data/"
        entries = _write_data_files(s3, export.s3_bucket, data_folder, records)
        files_manifest = "".join(_ENCODE(entry) + "\n" for entry in entries).encode()
        files_key = base + "manifest-files.json"
        _put_with_md5(s3, export.s3_bucket, files_key, files_manifest)
        end = _now_us()
        count = len(records.records)
        summary = _summary(export, files_key, count, records.billed_bytes, end)
        summary_key = base + "manifest-summary.json"
        _put_with_md5(s3, export.s3_bucket, summary_key, summary)
    except Exception as error:  # the export fails; the local cloud goes on
        log.exception("writing export %s failed", export.arn)
        _fail(export, "UNKNOWN", f"{type(error).__name__}: {error}")
        return
    export.item_count = count
    export.billed_size_bytes = records.billed_bytes
    export.manifest_key = summary_key
    export.end_us = end
    export.status = COMPLETED


def _put_with_md5(s3: Any, bucket: str, key: str, data: bytes) -> None:
    """A manifest and, beside it, its `.md5` (base64 MD5), as DynamoDB writes them."""
    moto_internals.s3_put_object(s3, bucket, key, data)
    moto_internals.s3_put_object(
        s3, bucket, key.removesuffix(".json") + ".md5", _md5_base64(data).encode()
    )


def _write_data_files(s3: Any, bucket: str, folder: str, records: _Records) -> list[dict[str, Any]]:
    """Gzip and upload the records in a few files, compressing one (zlib lets go of the
    GIL) while the next is joined; returns their `manifest-files.json` entries."""
    entries: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-gzip") as gzipper:
        pending: list[tuple[int, Future[bytes]]] = []

        def upload(count: int, packed: Future[bytes]) -> None:
            data = packed.result()
            key = folder + _data_file_name()
            etag = moto_internals.s3_put_object(s3, bucket, key, data)
            entries.append(
                {
                    "itemCount": count,
                    "md5Checksum": _md5_base64(data),
                    "etag": etag,
                    "dataFileS3Key": key,
                }
            )

        for chunk in _chunks(records.records):
            pending.append((len(chunk), gzipper.submit(_gzip, records.text(chunk))))
            if len(pending) > 1:  # at most two files' text in memory at a time
                upload(*pending.pop(0))
        for count, packed in pending:
            upload(count, packed)
    return entries


def _summary(export: TableExport, files_key: str, items: int, billed: int, end_us: int) -> bytes:
    """`manifest-summary.json`, with the members (and order) of DynamoDB's examples."""
    summary: dict[str, Any] = {
        "version": _SUMMARY_VERSION[export.export_type],
        "exportArn": export.arn,
        "startTime": _iso(export.start_us),
        "endTime": _iso(end_us),
        "tableArn": export.table_arn,
        "tableId": export.table_id,
    }
    if export.export_type == INCREMENTAL_EXPORT:
        assert export.from_us is not None and export.to_us is not None
        summary["exportFromTime"] = _iso(export.from_us)
        summary["exportToTime"] = _iso(export.to_us)
        summary["exportTime"] = _iso(export.to_us)
    else:
        assert export.export_time_us is not None
        summary["exportTime"] = _iso(export.export_time_us)
    summary.update(
        {
            "s3Bucket": export.s3_bucket,
            "s3Prefix": export.s3_prefix,
            "s3SseAlgorithm": export.s3_sse_algorithm,
            "s3SseKmsKeyId": export.s3_sse_kms_key_id,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": billed,
            "itemCount": items,
            "outputFormat": export.export_format,
        }
    )
    if export.export_type == INCREMENTAL_EXPORT:
        summary["outputView"] = export.view_type
        summary["exportType"] = INCREMENTAL_EXPORT
    return json.dumps(summary).encode()


def _fail(export: TableExport, code: str, message: str) -> None:
    export.failure_code = code
    export.failure_message = message
    export.end_us = _now_us()
    export.status = FAILED


# --- the API (installed by moto_patches) ----------------------------------------------


def _answer(body: Callable[[], dict[str, Any]]) -> Any:
    """The API's answer for moto to serialise: the body, or the DynamoDB error it raised."""
    try:
        return moto_internals.action_result(body())
    except ExportError as error:
        raise error.as_api_error() from None


def export_table_to_point_in_time(handler: Any) -> Any:
    """`ExportTableToPointInTime`: validated as DynamoDB does, written in the background."""
    backend, body = moto_internals.handler_request(handler)
    return _answer(lambda: {"ExportDescription": start_export(backend, body)})


def describe_export(handler: Any) -> Any:
    """`DescribeExport`."""
    backend, body = moto_internals.handler_request(handler)
    return _answer(
        lambda: {"ExportDescription": describe(backend, body.get("ExportArn", "")).description()}
    )


def list_exports(handler: Any) -> Any:
    """`ListExports`: newest first, `MaxResults` (1..25, default 25) a page."""
    backend, body = moto_internals.handler_request(handler)
    return _answer(lambda: _exports_page(backend, body))


def _exports_page(backend: Any, body: dict[str, Any]) -> dict[str, Any]:
    exports = listed(backend, body.get("TableArn"))
    size = int(body.get("MaxResults") or 25)
    start = 0
    if body.get("NextToken"):
        try:
            start = int(body["NextToken"], 16)
        except ValueError:
            raise _validation(
                f"Invalid Request: Provided nextToken is invalid: {body['NextToken']}"
            ) from None
    page = exports[start : start + size]
    result: dict[str, Any] = {"ExportSummaries": [e.summary() for e in page]}
    if start + size < len(exports):
        result["NextToken"] = f"{start + size:x}"
    return result
