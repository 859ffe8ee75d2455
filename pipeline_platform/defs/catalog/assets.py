"""Glue Data Catalog tables of the lake, kept current by the crawler (when the lake has days or
columns the catalog lacks)."""

import time
from typing import Any

import dagster as dg

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.run_context import state_store
from pipeline_platform.defs.partitions import SINGLE_RUN, WRITE_HOURS
from pipeline_platform.defs.table_metadata import definition_metadata
from pipeline_platform.resources.cloud import CloudResource

GROUP = "catalog"
#: The step (op) that crawls the lake (or finds the catalog current).
CRAWL_STEP = "glue_crawl"
# The Glue table each lake folder becomes (the crawler names tables after folders).
CATALOG_TABLES = {
    keys.GLUE_READINGS: (ws.READINGS_TABLE, keys.LAKE_READINGS),
    keys.GLUE_QUARANTINE: (ws.QUARANTINE_TABLE, keys.LAKE_QUARANTINE),
    keys.GLUE_RULE_ERRORS: (ws.RULE_ERRORS_TABLE, keys.LAKE_RULE_ERRORS),
}


_LAKE_TABLES = {t.name: t for t in ws.TABLES}


class CrawlFailed(RuntimeError):
    """The crawler's last crawl did not succeed, or it never returned to READY."""


def run_crawler(glue: Any, name: str, log, poll: float = 0.2, timeout: float = 900.0) -> dict:
    """Start the crawler, wait for READY and return its LastCrawl; a failed crawl raises."""
    try:
        glue.start_crawler(Name=name)
    except glue.exceptions.EntityNotFoundException as error:
        raise CrawlFailed(f"crawler {name} does not exist (deploy the analytics stack)") from error
    except glue.exceptions.CrawlerRunningException:
        log(f"crawler {name} already running; waiting for that crawl")
    deadline = time.monotonic() + timeout
    state = None
    while True:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] != state:
            state = crawler["State"]
            log(f"crawler {name}: {state}")
        if state == "READY":
            break
        if time.monotonic() > deadline:
            raise CrawlFailed(f"crawler {name} still {state} after {timeout:.0f}s")
        time.sleep(poll)
    last = crawler.get("LastCrawl", {})
    if last.get("Status") not in (None, "SUCCEEDED"):
        raise CrawlFailed(
            f"crawler {name} crawl {last.get('Status')}: {last.get('ErrorMessage', 'no message')}"
        )
    return last


def table_columns(glue: Any, database: str, table: str) -> dict[str, str] | None:
    """Column name -> type of a catalog table, partition keys included; None if absent."""
    try:
        found = glue.get_table(DatabaseName=database, Name=table)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return None
    descriptor = found.get("StorageDescriptor", {})
    columns = [*descriptor.get("Columns", []), *found.get("PartitionKeys", [])]
    return {c["Name"]: c.get("Type", "") for c in columns}


def partition_values(glue: Any, database: str, table: str) -> list[str]:
    """The table's partitions as `dt=...` strings."""
    paginator = glue.get_paginator("get_partitions")
    values: list[str] = []
    for page in paginator.paginate(DatabaseName=database, TableName=table):
        values.extend("/".join(p["Values"]) for p in page["Partitions"])
    return sorted(values)


def catalog_is_current(
    glue: Any, cloud: CloudResource, catalog: dict[str, dict[str, str] | None]
) -> bool:
    """True when every lake table's catalog table has all its reading days and columns.

    `catalog` holds each table's catalog columns as `table_columns` found them. The
    lake's state says which days hold rows and which extra columns the files carry.
    A run that added neither (most hourly runs: their late readings fall on days the
    lake has) leaves nothing for a crawl to find.
    """
    states = state_store(cloud).load_many(catalog)
    database = cloud.settings.glue_database
    for table, columns in catalog.items():
        state = states[table]
        days = {day for day, d in state.days.items() if d.rows}
        if not days:
            continue  # an empty lake table has no folder, so no crawl makes its table
        if columns is None:
            return False
        wanted = {c.lower() for c in (*_LAKE_TABLES[table].column_names, *state.extras)}
        if not wanted <= {c.lower() for c in columns}:
            return False
        if not days <= set(partition_values(glue, database, table)):
            return False
    return True


def _drift_check(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "schema_unchanged",
        asset=key,
        description="Warns when a crawl changed the table's columns (e.g. a new payload field).",
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=[lake_key],
            description=f"Glue Data Catalog table `{table}` over the lake, with `dt` partitions.",
            kinds={"glue"},
            metadata=definition_metadata(_LAKE_TABLES[table]),
            group_name=GROUP,
        )
        for key, (table, lake_key) in CATALOG_TABLES.items()
    ],
    check_specs=[_drift_check(key) for key in CATALOG_TABLES],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    name=CRAWL_STEP,
)
def glue_tables(context: dg.AssetExecutionContext, cloud: CloudResource):
    """Crawl the lake so the Data Catalog has its tables, columns and partitions.

    The crawl is skipped when the catalog has every reading day and column the lake
    has already: on AWS each crawl is billed for at least ten minutes of its DPUs and
    takes a minute or more, and most hourly runs add no day and no column.
    """
    glue = cloud.client("glue")
    before = {
        key: table_columns(glue, cloud.settings.glue_database, table)
        for key, (table, _) in CATALOG_TABLES.items()
    }
    current = catalog_is_current(
        glue, cloud, {table: before[key] for key, (table, _) in CATALOG_TABLES.items()}
    )
    if current:
        context.log.info("the catalog has every lake day and column already: no crawl")
        last: dict = {}
    else:
        last = run_crawler(glue, cloud.settings.crawler_name, context.log.info)
    for key, (table, _) in CATALOG_TABLES.items():
        # Without a crawl the catalog is as it was read above.
        after = before[key] if current else table_columns(glue, cloud.settings.glue_database, table)
        if after is None:
            context.log.warning(f"crawl made no table {cloud.settings.glue_database}.{table}")
        partitions = partition_values(glue, cloud.settings.glue_database, table) if after else []
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "database": cloud.settings.glue_database,
                "table": table,
                "table_exists": after is not None,
                "columns": dg.MetadataValue.json(after or {}),
                "partitions": len(partitions),
                "crawled": not current,
                "crawl_id": last.get("CrawlId", ""),
            },
        )
        added = sorted(set(after or {}) - set(before[key] or {}))
        removed = sorted(set(before[key] or {}) - set(after or {}))
        changed = before[key] is not None and (added or removed)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="schema_unchanged",
            passed=not changed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"added_columns": added, "removed_columns": removed},
            description=(
                f"columns added {added}, removed {removed}" if changed else "schema unchanged"
            ),
        )
