"""Warehouse assets: the lake's changed rows, merged into `raw.*` by key, and reconciled.

Each load takes the change sets of the lake versions the warehouse has not
loaded (after a failed run too: nothing is skipped), merges their rows by key in
one transaction and queues their changed hours for dbt. Two checks per table and
run:

- `lake_changes_reach_warehouse`: every key the lake changed since the last load
  (its change sets) is what the load changed in the warehouse, neither more nor
  fewer;
- `lake_days_equal_warehouse_days`: every reading day holds as many rows in the
  warehouse as in the lake, and the warehouse has loaded the lake's latest
  version, so nothing stored in the lake is missing from the warehouse.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.run_context import change_set_key, state_store
from pipeline_platform.defs.partitions import SINGLE_RUN, WRITE_HOURS
from pipeline_platform.defs.table_metadata import COLUMN_SCHEMA, column_schema, definition_metadata
from pipeline_platform.resources.cloud import CloudResource
from pipeline_platform.resources.warehouse import Warehouse
from pipeline_platform.resources.warehouse_load import LakeFile, LoadSpec

GROUP = "warehouse"
CHANGES_CHECK = "lake_changes_reach_warehouse"
DAYS_CHECK = "lake_days_equal_warehouse_days"


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that prints no progress bar (a step's output is for its logs)."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    return con


@dataclass(frozen=True)
class ChangeSets:
    """The change sets of the lake versions a load takes, as this step found them."""

    #: Distinct keys they changed: what the load must change in the warehouse.
    keys: int
    files: tuple[LakeFile, ...]
    #: False when one of them holds only keys (a lake written before change sets held whole
    #: rows): the load then takes the changed days' files instead.
    whole_rows: bool


def change_sets(cloud: CloudResource, table: ws.Table, versions: range) -> ChangeSets:
    """The change sets of lake versions `versions` of `table`: their keys, files and form."""
    wanted = [change_set_key(table.name, v) for v in versions]
    if not wanted:
        return ChangeSets(0, (), True)
    with tempfile.TemporaryDirectory(prefix="change-sets-") as tmp:
        files = cloud.download(cloud.settings.lake_bucket, wanted, Path(tmp))
        paths = [str(f) for f in files]
        with _connect() as con:
            found = con.execute(
                f"select count(*) from (select distinct {', '.join(table.key)} "
                "from read_parquet(?, union_by_name = true))",
                [paths],
            ).fetchone()
            whole = all(
                set(table.file_columns)
                <= {
                    row[0]
                    for row in con.execute(
                        "describe select * from read_parquet(?)", [path]
                    ).fetchall()
                }
                for path in paths
            )
        sizes = tuple(LakeFile(key, f.stat().st_size) for key, f in zip(wanted, files, strict=True))
    return ChangeSets(int(found[0]) if found else 0, sizes, whole)


def _lake_files(cloud: CloudResource, table: ws.Table, days: list[str]) -> tuple[LakeFile, ...]:
    prefix = keys.LAKE_PREFIXES[table.name]
    wanted = {f"{prefix}dt={day}/" for day in days}
    width = len(prefix) + len("dt=YYYY-MM-DD/")
    listed = (
        [o for day in sorted(wanted) for o in cloud.list_objects(cloud.settings.lake_bucket, day)]
        if len(wanted) <= 31
        else [
            o
            for o in cloud.list_objects(cloud.settings.lake_bucket, prefix)
            if o.key[:width] in wanted
        ]
    )
    return tuple(LakeFile(o.key, o.size) for o in listed if o.key.endswith(".parquet"))


def load_table(
    context: dg.AssetExecutionContext,
    cloud: CloudResource,
    warehouse: Warehouse,
    table: ws.Table,
):
    """Load lake table `table`'s unloaded days into `raw.<table>`; yield the result and checks."""
    state = state_store(cloud).load(table.name)[0]
    loaded = warehouse.loaded(table.name, state.lake_id)
    replace_all = loaded.other_lake and loaded.version == 0
    if replace_all:
        context.log.warning(
            f"raw.{table.name} was loaded from another lake (its state was lost and started "
            "again): replacing the whole table with this lake's"
        )
    days = sorted(day for day, d in state.days.items() if d.version > loaded.version)
    changes = change_sets(cloud, table, range(loaded.version + 1, state.version + 1))
    # The changed rows are what the load merges, by key: its cost follows the writes, not the
    # size of the days they fall on. A new lake replaces the table from its days' files.
    by_key = changes.whole_rows and not replace_all
    spec = LoadSpec(
        table=table,
        bucket=cloud.settings.lake_bucket,
        lake_prefix=keys.LAKE_PREFIXES[table.name],
        files=changes.files if by_key else _lake_files(cloud, table, days),
        lake_version=state.version,
        manifest_key=f"{keys.MANIFEST_PREFIX}{table.name}/v{state.version:08d}.manifest",
        lake_id=state.lake_id,
        replace_all=replace_all,
        change_sets=by_key,
        extra_columns=dict(state.extras),
    )
    # Called with no files too: the table exists for dbt even before its first row.
    result = warehouse.load(spec, cloud)
    # The change sets (and manifest) of the versions now loaded have served their purpose.
    cloud.delete_keys(
        cloud.settings.lake_bucket,
        [change_set_key(table.name, v) for v in range(loaded.version + 1, state.version + 1)]
        + [spec.manifest_key],
    )
    changed, rows_by_day, added = result.changed_rows, result.rows_by_day, result.added_columns
    queued = (result.queued_hours, result.queued_days)
    if added:
        context.log.info(f"added columns to raw.{table.name}: {list(added)}")
    lake_rows = {day: d.rows for day, d in state.days.items()}
    differing = {
        day: {"lake": lake_rows.get(day, 0), "warehouse": rows_by_day.get(day, 0)}
        for day in sorted(set(lake_rows) | set(rows_by_day))
        if lake_rows.get(day, 0) != rows_by_day.get(day, 0)
    }
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(rows_by_day.values()),
            "reading_days": len(rows_by_day),
            COLUMN_SCHEMA: column_schema(table, state.extras),
            "rows_changed": changed,
            "reading_days_loaded": dg.MetadataValue.json(days),
            "loaded_from": "change sets" if by_key else "whole days",
            "rows_staged": result.staged_rows,
            "lake_version_loaded": state.version,
            "hours_queued_for_dbt": queued[0],
            "days_queued_for_dbt": queued[1],
            "added_columns": list(added),
            "table": f"{ws.RAW_SCHEMA}.{table.name}",
        }
    )
    yield dg.AssetCheckResult(
        check_name=CHANGES_CHECK,
        passed=changed == changes.keys,
        metadata={
            "keys_changed_in_lake": changes.keys,
            "rows_changed_in_warehouse": changed,
            "lake_versions": f"{loaded.version + 1}..{state.version}",
        },
    )
    yield dg.AssetCheckResult(
        check_name=DAYS_CHECK,
        passed=not differing,
        metadata={
            "days": len(lake_rows),
            "lake_rows": sum(lake_rows.values()),
            "warehouse_rows": sum(rows_by_day.values()),
            "days_that_differ": dg.MetadataValue.json(dict(list(differing.items())[:20])),
        },
    )


def _checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            CHANGES_CHECK,
            asset=key,
            description="The warehouse changed exactly the keys the lake changed since the last "
            "load.",
        ),
        dg.AssetCheckSpec(
            DAYS_CHECK,
            asset=key,
            description="Every reading day holds as many rows as the lake's, and the lake's "
            "latest version is loaded: nothing in the lake is missing here.",
        ),
    ]


def _warehouse_asset(key: dg.AssetKey, table: ws.Table, lake: dg.AssetKey, glue: dg.AssetKey):
    def load(context: dg.AssetExecutionContext) -> Any:
        yield from load_table(context, context.resources.cloud, context.resources.warehouse, table)

    load.__name__ = f"raw_{table.name}"

    return dg.asset(
        key=key,
        deps=[lake, glue],
        partitions_def=WRITE_HOURS,
        backfill_policy=SINGLE_RUN,
        kinds={"redshift", "duckdb"},
        group_name=GROUP,
        metadata=definition_metadata(table, f"{ws.RAW_SCHEMA}.{table.name}"),
        check_specs=_checks(key),
        required_resource_keys={"cloud", "warehouse"},
        description=_DESCRIPTIONS[table.name],
    )(load)


_DESCRIPTIONS = {
    ws.READINGS_TABLE: (
        "`raw.sensor_readings`: the lake's readings, the rows the lake changed merged by key "
        "in one transaction (on Redshift, one COPY of the lake's change sets from a manifest "
        "into a stage, `dt` derived from `reading_at`; locally DuckDB reads the same files)."
    ),
    ws.QUARANTINE_TABLE: (
        "`raw.quarantined_records`: the stream processor's quarantined records, by arrival "
        "day, merged as readings are."
    ),
    ws.RULE_ERRORS_TABLE: (
        "`raw.rule_errors`: the messages the topic rule could not route (reason "
        "`TOPIC_RULE_ERROR`), with payload, topic, client id and failure, beside the "
        "quarantined records."
    ),
}

raw_sensor_readings = _warehouse_asset(
    keys.RAW_READINGS, ws.READINGS, keys.LAKE_READINGS, keys.GLUE_READINGS
)
raw_quarantined_records = _warehouse_asset(
    keys.RAW_QUARANTINE, ws.QUARANTINE, keys.LAKE_QUARANTINE, keys.GLUE_QUARANTINE
)
raw_rule_errors = _warehouse_asset(
    keys.RAW_RULE_ERRORS, ws.RULE_ERRORS, keys.LAKE_RULE_ERRORS, keys.GLUE_RULE_ERRORS
)
