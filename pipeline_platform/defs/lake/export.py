"""DynamoDB export to S3: request, wait, and find the data files of an export.

Exports write, under their prefix, `AWSDynamoDB/<ExportId>/manifest-summary.json`,
`manifest-files.json` (one JSON line per data file, with its `dataFileS3Key`) and
`data/*.json.gz`; the data files are read from the manifest. An emulator that
writes data files only is read by listing them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline_platform import progress
from pipeline_platform.defs.lake.windows import FULL_EXPORT, PlannedExport

VIEW_TYPE = "NEW_AND_OLD_IMAGES"


class ExportFailed(RuntimeError):
    """The table export was refused, ended FAILED, or did not finish in time."""


def export_request(
    planned: PlannedExport, table_arn: str, bucket: str, prefix: str, now: datetime
) -> dict[str, Any]:
    """Arguments of `ExportTableToPointInTime` for a planned export.

    A full export that is to end now leaves `ExportTime` out, and AWS takes the
    current time (a clock a little ahead of AWS's would otherwise ask for the
    future); its description says the time it used.
    """
    request: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix.rstrip("/"),
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": planned.export_type,
    }
    if planned.export_type == FULL_EXPORT:
        if planned.end < now:
            request["ExportTime"] = planned.end
        return request
    request["IncrementalExportSpecification"] = {
        "ExportFromTime": planned.start,
        "ExportToTime": planned.end,
        "ExportViewType": VIEW_TYPE,
    }
    return request


def exported_until(description: dict[str, Any], planned: PlannedExport) -> datetime:
    """The write time an export's data reaches: the time AWS reports, else the planned end."""
    if planned.export_type == FULL_EXPORT:
        reported = description.get("ExportTime")
    else:
        reported = description.get("IncrementalExportSpecification", {}).get("ExportToTime")
    if isinstance(reported, datetime):
        return reported.astimezone(UTC)
    return planned.end


def wait_for_exports(
    dynamodb: Any,
    export_arns: list[str],
    log: Callable[[str], None],
    poll_seconds: float = 0.2,
    timeout_seconds: float = 3600.0,
) -> list[dict[str, Any]]:
    """Poll `DescribeExport` until every export leaves IN_PROGRESS; fail on the first FAILED."""
    deadline = time.monotonic() + timeout_seconds
    delay = poll_seconds
    done: dict[str, dict[str, Any]] = {}
    reported: dict[str, str] = {}
    while True:
        for arn in export_arns:
            if arn in done:
                continue
            description = dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
            status = description["ExportStatus"]
            if reported.get(arn) != status:
                log(f"export {arn}: {status}, {description.get('ItemCount', 0)} items so far")
                reported[arn] = status
            if status == "COMPLETED":
                done[arn] = description
            elif status == "FAILED":
                raise ExportFailed(
                    f"export {arn} failed: {description.get('FailureCode')}: "
                    f"{description.get('FailureMessage')}"
                )
        items = sum(int(d.get("ItemCount", 0)) for d in done.values())
        progress.report(
            f"exporting, {items:,} items exported so far", len(done), len(export_arns), "exports"
        )
        if len(done) == len(export_arns):
            return [done[arn] for arn in export_arns]
        if time.monotonic() > deadline:
            raise ExportFailed(f"exports still running after {timeout_seconds:.0f}s")
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
