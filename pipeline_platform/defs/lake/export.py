"""DynamoDB export to S3: request, wait, and find the data files of an export.

Full exports write `{"Item": ...}` lines; incremental exports write
`{"Keys", "NewImage", "OldImage"}` lines (see `shaping`). Real exports list their
data files in `manifest-files.json`; the emulator writes data files only, so
the files are listed from S3 when no manifest exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"
# AWS accepts incremental export windows from 15 minutes to 24 hours.
MIN_INCREMENTAL_WINDOW = timedelta(minutes=15)
MAX_INCREMENTAL_WINDOW = timedelta(hours=24)


class ExportFailed(RuntimeError):
    """The table export ended FAILED, or did not finish in time."""


def incremental_window_allowed(start: datetime, end: datetime, now: datetime) -> bool:
    """True when AWS accepts an incremental export of writes in [start, end)."""
    return MIN_INCREMENTAL_WINDOW <= end - start <= MAX_INCREMENTAL_WINDOW and end <= now


def export_request(
    table_arn: str,
    bucket: str,
    prefix: str,
    write_window: tuple[datetime, datetime] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Arguments of `ExportTableToPointInTime`: incremental for an allowed write window, else full.

    A write window is the span of *write* times to export; it is honoured only
    when AWS allows it (15 min .. 24 h, already in the past), else the whole
    table is exported.
    """
    request: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix.rstrip("/"),
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": FULL_EXPORT,
    }
    if write_window and now and incremental_window_allowed(*write_window, now):
        request["ExportType"] = INCREMENTAL_EXPORT
        request["IncrementalExportSpecification"] = {
            "ExportFromTime": write_window[0],
            "ExportToTime": write_window[1],
            "ExportViewType": "NEW_AND_OLD_IMAGES",
        }
    return request


def wait_for_export(
    dynamodb: Any,
    export_arn: str,
    log: Callable[[str], None],
    poll_seconds: float = 0.2,
    timeout_seconds: float = 3600.0,
) -> dict[str, Any]:
    """Poll `DescribeExport` until the export leaves IN_PROGRESS; log progress; fail on FAILED."""
    deadline = time.monotonic() + timeout_seconds
    delay = poll_seconds
    last_status = None
    while True:
        description = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]
        status = description["ExportStatus"]
        if status != last_status:
            log(f"export {export_arn}: {status}, {description.get('ItemCount', 0)} items so far")
            last_status = status
        if status == "COMPLETED":
            return description
        if status == "FAILED":
            raise ExportFailed(
                f"export {export_arn} failed: {description.get('FailureCode')}: "
                f"{description.get('FailureMessage')}"
            )
        if time.monotonic() > deadline:
            raise ExportFailed(f"export {export_arn} still {status} after {timeout_seconds:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


def _read_json_lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def data_file_keys(
    s3: Any, bucket: str, keys_under_prefix: list[str], description: dict
) -> list[str]:
    """Keys of an export's data files: from its manifest when there is one, else listed.

    `keys_under_prefix` is every object under the export's prefix; manifests,
    checksums and `_started` markers are never data.
    """
    summary_key = description.get("ExportManifest")
    files_keys = [k for k in keys_under_prefix if k.endswith("manifest-files.json")]
    if summary_key and summary_key in keys_under_prefix:
        summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
        files_keys = [summary["manifestFilesS3Key"]]
    if files_keys:
        return sorted(
            line["dataFileS3Key"]
            for manifest in files_keys
            for line in _read_json_lines(s3, bucket, manifest)
        )
    return sorted(k for k in keys_under_prefix if "/data/" in k and k.endswith(".gz"))
