"""Lake assets: the table exported to S3, and the export and quarantine shaped into Parquet."""

import tempfile
from datetime import date
from pathlib import Path

import dagster as dg

from pipeline_platform.defs import keys
from pipeline_platform.defs.lake import export, shaping
from pipeline_platform.defs.partitions import DAILY, SINGLE_RUN, days_of
from pipeline_platform.resources.cloud import CloudResource

GROUP = "lake"


def export_prefix(days: tuple[date, ...]) -> str:
    """Where the export serving `days` is written: one folder per partition range."""
    return f"{keys.EXPORT_PREFIX}range={days[0].isoformat()}_{days[-1].isoformat()}/"


@dg.asset(
    key=keys.DYNAMODB_EXPORT,
    deps=[keys.DYNAMODB_TABLE],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"dynamodb", "s3"},
    group_name=GROUP,
)
def dynamodb_export(
    context: dg.AssetExecutionContext, cloud: CloudResource
) -> dg.MaterializeResult:
    """Export the readings table to S3 (DynamoDB JSON, gzipped) for the partitions being run.

    Partitions are reading dates and a late reading may be written any time
    later, so the export is a full point-in-time export and shaping keeps the
    run's days. Re-running replaces the range's previous export.
    """
    days = days_of(context)
    dynamodb = cloud.client("dynamodb")
    table_arn = dynamodb.describe_table(TableName=cloud.settings.table_name)["Table"]["TableArn"]
    prefix = export_prefix(days)
    removed = cloud.delete_prefix(cloud.settings.lake_bucket, prefix)
    if removed:
        context.log.info(f"replacing the previous export of this range ({removed} objects)")
    request = export.export_request(table_arn, cloud.settings.lake_bucket, prefix)
    try:
        started = dynamodb.export_table_to_point_in_time(**request)["ExportDescription"]
    except dynamodb.exceptions.PointInTimeRecoveryUnavailableException as error:
        raise export.ExportFailed(
            f"table {cloud.settings.table_name} has point-in-time recovery disabled; exports "
            "need it (the streaming stack enables it; locally the local cloud does)"
        ) from error
    description = export.wait_for_export(dynamodb, started["ExportArn"], context.log.info)
    data_keys = export.data_file_keys(
        cloud.client("s3"),
        cloud.settings.lake_bucket,
        cloud.list_keys(cloud.settings.lake_bucket, prefix),
        description,
    )
    return dg.MaterializeResult(
        metadata={
            "export_arn": description["ExportArn"],
            "export_type": description.get("ExportType", request["ExportType"]),
            "item_count": description.get("ItemCount", 0),
            "s3_prefix": f"s3://{cloud.settings.lake_bucket}/{prefix}",
            "data_files": len(data_keys),
        }
    )


@dg.asset(
    key=keys.LAKE_READINGS,
    deps=[keys.DYNAMODB_EXPORT],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"s3", "parquet", "duckdb"},
    group_name=GROUP,
    check_specs=[dg.AssetCheckSpec("export_items_reach_lake", asset=keys.LAKE_READINGS)],
)
def lake_sensor_readings(context: dg.AssetExecutionContext, cloud: CloudResource):
    """Typed Parquet readings under `lake/sensor_readings/dt=YYYY-MM-DD/` (reading date, UTC).

    Columns are `warehouse_schema.READINGS_COLUMNS` plus every extra payload
    field (such as `pressure`) as a column of its own. Each partition of the
    run is replaced as a whole, so re-running yields the same files.
    """
    days = days_of(context)
    prefix = export_prefix(days)
    listed = cloud.list_keys(cloud.settings.lake_bucket, prefix)
    if not listed:
        raise FileNotFoundError(
            f"no export under s3://{cloud.settings.lake_bucket}/{prefix}: materialise "
            f"{keys.DYNAMODB_EXPORT.to_user_string()} for the same partitions first"
        )
    data_keys = export.data_file_keys(cloud.client("s3"), cloud.settings.lake_bucket, listed, {})
    with tempfile.TemporaryDirectory(prefix="lake-readings-") as tmp:
        local = cloud.download(cloud.settings.lake_bucket, data_keys, Path(tmp) / "export")
        result = shaping.shape_readings(
            [str(p) for p in local], Path(tmp) / "parquet", days[0], days[-1]
        )
        cloud.delete_keys(
            cloud.settings.lake_bucket,
            cloud.partition_keys(cloud.settings.lake_bucket, keys.LAKE_READINGS_PREFIX, days),
        )
        written = cloud.upload_tree(
            Path(tmp) / "parquet", cloud.settings.lake_bucket, keys.LAKE_READINGS_PREFIX
        )
    if result.skipped_fields:
        context.log.warning(
            f"fields not portable as column names, left out: {result.skipped_fields}"
        )
    rows = {d.isoformat(): int(result.rows_by_day.get(d.isoformat(), 0)) for d in days}
    total = sum(rows.values())
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "rows_by_day": rows,
            "extra_columns": result.extra_columns,
            "files": len(written),
            "export_items": result.export_items,
        }
    )
    # Every exported item dated in the run's days lands exactly once in the lake.
    exported = sum(result.exported_by_day.get(d.isoformat(), 0) for d in days)
    yield dg.AssetCheckResult(
        check_name="export_items_reach_lake",
        passed=exported == total,
        metadata={"exported_items_in_days": exported, "lake_rows": total},
    )


@dg.asset(
    key=keys.LAKE_QUARANTINE,
    deps=[keys.S3_QUARANTINE],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"s3", "parquet", "duckdb"},
    group_name=GROUP,
)
def lake_quarantined_records(
    context: dg.AssetExecutionContext, cloud: CloudResource
) -> dg.MaterializeResult:
    """Quarantined records as Parquet in `lake/quarantined_records/dt=YYYY-MM-DD/` (arrival day).

    Read from the quarantine bucket's `<quarantine prefix>dt=YYYY-MM-DD/*.jsonl` (the
    prefix is the streaming stack's `QuarantinePrefix`, `quarantine/` by default);
    each partition of the run is replaced as a whole.
    """
    days = days_of(context)
    with tempfile.TemporaryDirectory(prefix="lake-quarantine-") as tmp:
        listed = [
            k
            for k in cloud.partition_keys(
                cloud.settings.quarantine_bucket, cloud.settings.quarantine_prefix, days
            )
            if k.endswith(".jsonl")
        ]
        files_by_day: dict = {}
        for day in days:
            day_prefix = f"{cloud.settings.quarantine_prefix}dt={day.isoformat()}/"
            day_keys = [k for k in listed if k.startswith(day_prefix)]
            if day_keys:
                local = cloud.download(
                    cloud.settings.quarantine_bucket, day_keys, Path(tmp) / "jsonl"
                )
                files_by_day[day] = [str(p) for p in local]
        rows = shaping.shape_quarantine(files_by_day, Path(tmp) / "parquet")
        cloud.delete_keys(
            cloud.settings.lake_bucket,
            cloud.partition_keys(cloud.settings.lake_bucket, keys.LAKE_QUARANTINE_PREFIX, days),
        )
        written = cloud.upload_tree(
            Path(tmp) / "parquet", cloud.settings.lake_bucket, keys.LAKE_QUARANTINE_PREFIX
        )
    per_day = {d.isoformat(): int(rows.get(d.isoformat(), 0)) for d in days}
    context.log.info(f"quarantined records per day: {per_day}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(per_day.values()),
            "rows_by_day": per_day,
            "files": len(written),
        }
    )
