"""The one module of the local cloud that knows moto's internals.

moto's public surface is its server and `mock_aws`; the local cloud also reads and
calls moto's models directly (a shard's records, a table's items, a crawler's crawls)
and patches some of their methods (`moto_patches`). Those internals change between
releases without notice: moto 5.2.6 made a Kinesis record's `created_at` a datetime
(it was epoch seconds), its `data` the payload bytes (it was base64 text) and
`KinesisBackend.put_record` take bytes. So every import from moto and every read of a
moto object's attributes goes through the functions here, each written against the
moto version `pyproject.toml` pins, and each has a test in
`tests/local_cloud/test_moto_internals.py` that names it: the next upstream change
fails that test, not the demo.

Imports from moto happen inside the functions: loading this module (for the type
names, or in a process that never starts the emulator) must not load moto.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# --- the package ---------------------------------------------------------------------


def version() -> str:
    """The installed moto's version (a snapshot of another version's state is not loaded)."""
    import moto

    return str(moto.__version__)


def default_account_id() -> str:
    """The account moto answers for when a request names none (`123456789012`)."""
    from moto.core import DEFAULT_ACCOUNT_ID

    return str(DEFAULT_ACCOUNT_ID)


def utcnow() -> dt.datetime:
    """moto's clock (naive UTC): what it stamps on what it records."""
    from moto.core.utils import utcnow as moto_utcnow

    return moto_utcnow()


# --- Kinesis -------------------------------------------------------------------------


def kinesis_stream(region: str, account_id: str, name: str) -> Any | None:
    """moto's in-process stream object, or None when this process's moto has no such stream."""
    from moto.kinesis.models import kinesis_backends

    if account_id not in kinesis_backends or region not in kinesis_backends[account_id]:
        return None
    return kinesis_backends[account_id][region].streams.get(name)


def shard_records(shard: Any) -> dict[int, Any]:
    """A shard's records by sequence number, in order: moto numbers them 1, 2, 3... in an
    insertion-ordered dict that grows while it is read (its other methods copy or scan it)."""
    records: dict[int, Any] = shard.records
    return records


def record_partition_key(record: Any) -> str:
    """A Kinesis record's partition key."""
    return str(record.partition_key)


def record_data(record: Any) -> bytes:
    """A Kinesis record's payload bytes (moto keeps them as given to `put_record`)."""
    data: bytes = record.data
    return data


def record_arrival(record: Any) -> float:
    """When a Kinesis record arrived, in epoch seconds (moto keeps a naive UTC datetime)."""
    created: dt.datetime = record.created_at
    return created.replace(tzinfo=dt.UTC).timestamp()


class ApiError(Exception):
    """An AWS API error moto answered with: its message, HTTP status and error code."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def put_kinesis_record(
    region: str, account_id: str, stream_name: str, partition_key: str, data: bytes
) -> str:
    """PutRecord through moto's Kinesis backend in this process: the record's sequence
    number, or `ApiError` where moto's PutRecord handler answers with an error."""
    from moto.core.exceptions import JsonRESTError
    from moto.kinesis.models import kinesis_backends

    backend = kinesis_backends[account_id][region]
    try:
        # moto annotates these two as str; its own PutRecord handler passes None when the
        # request has neither, as here.
        sequence, _shard_id = backend.put_record(
            stream_arn=None,  # type: ignore[arg-type]
            stream_name=stream_name,
            partition_key=partition_key,
            explicit_hash_key=None,  # type: ignore[arg-type]
            data=data,
        )
    except JsonRESTError as exc:
        raise ApiError(exc.message, int(exc.code), exc.error_type) from None
    return str(sequence)


# --- DynamoDB ------------------------------------------------------------------------


def number_size(value: Any) -> int:
    """The bytes a DynamoDB number counts towards an item's size, by moto's rule (since
    5.2.6 AWS's: about one byte per two significant digits, plus one)."""
    from moto.dynamodb.models.utilities import number_size as moto_number_size

    return moto_number_size(str(value))
