"""Warehouse assets: the lake's partitions merged into `raw.*` by natural key."""

import dagster as dg
import pyarrow as pa

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.partitions import DAILY, SINGLE_RUN, days_of
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.warehouse_load import LoadSpec

GROUP = "warehouse"
RECONCILE = "lake_rows_equal_warehouse_rows"


def extra_columns(schemas: list[pa.Schema], fixed: tuple[ws.Column, ...]) -> dict[str, str]:
    """Lake columns beyond `fixed`, typed `double` for numbers and `string` otherwise."""
    known = {c.name for c in fixed}
    extras: dict[str, str] = {}
    for schema in schemas:
        for f in schema:
            if f.name in known or f.name in extras:
                continue
            numeric = pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
            extras[f.name] = "double" if numeric else "string"
    return extras


def _load(context, cloud: CloudResource, warehouse, table: str, columns, key, lake_prefix: str):
    days = days_of(context)
    spec = LoadSpec(table, columns, key, cloud.settings.lake_bucket, lake_prefix, days)
    file_keys = [
        k
        for k in cloud.partition_keys(cloud.settings.lake_bucket, lake_prefix, days)
        if k.endswith(".parquet")
    ]
    footers = cloud.parquet_metadata(cloud.settings.lake_bucket, file_keys)
    schemas = [footer.schema.to_arrow_schema() for footer in footers]
    spec = LoadSpec(
        table,
        columns,
        key,
        cloud.settings.lake_bucket,
        lake_prefix,
        days,
        extra_columns(schemas, columns),
    )
    result = warehouse.merge_partitions(spec, cloud)
    lake_rows = sum(footer.num_rows for footer in footers)
    warehouse_rows = sum(result.rows_by_day.values())
    if result.added_columns:
        context.log.info(f"added columns to raw.{table}: {list(result.added_columns)}")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": warehouse_rows,
            "rows_by_day": result.rows_by_day,
            "staged_rows": result.staged_rows,
            "added_columns": list(result.added_columns),
            "table": f"{ws.RAW_SCHEMA}.{table}",
        }
    )
    yield dg.AssetCheckResult(
        check_name=RECONCILE,
        passed=lake_rows == warehouse_rows,
        metadata={"lake_rows": lake_rows, "warehouse_rows": warehouse_rows},
    )


def _reconcile(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        RECONCILE, asset=key, description="The run's days hold as many rows as the lake's files."
    )


@dg.asset(
    key=keys.RAW_READINGS,
    deps=[keys.LAKE_READINGS, keys.GLUE_READINGS],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"redshift", "duckdb"},
    group_name=GROUP,
    check_specs=[_reconcile(keys.RAW_READINGS)],
    required_resource_keys={"cloud", "warehouse"},
)
def raw_sensor_readings(context: dg.AssetExecutionContext):
    """`raw.sensor_readings`: the lake's readings merged by (device_id, reading_epoch).

    On Redshift a COPY of the day's Parquet (with the stack's IAM role) into a
    staging table, then delete+insert in one transaction; locally DuckDB reads
    the same Parquet and merges the same way. New lake columns are added first.
    """
    yield from _load(
        context,
        context.resources.cloud,
        context.resources.warehouse,
        ws.READINGS_TABLE,
        ws.READINGS_COLUMNS,
        ws.READINGS_KEY,
        keys.LAKE_READINGS_PREFIX,
    )


@dg.asset(
    key=keys.RAW_QUARANTINE,
    deps=[keys.LAKE_QUARANTINE, keys.GLUE_QUARANTINE],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"redshift", "duckdb"},
    group_name=GROUP,
    check_specs=[_reconcile(keys.RAW_QUARANTINE)],
    required_resource_keys={"cloud", "warehouse"},
)
def raw_quarantined_records(context: dg.AssetExecutionContext):
    """`raw.quarantined_records`: quarantined records merged by Kinesis sequence number."""
    yield from _load(
        context,
        context.resources.cloud,
        context.resources.warehouse,
        ws.QUARANTINE_TABLE,
        ws.QUARANTINE_COLUMNS,
        ws.QUARANTINE_KEY,
        keys.LAKE_QUARANTINE_PREFIX,
    )
