"""Glue Data Catalog tables of the lake, kept current by the crawler."""

import time
from typing import Any

import dagster as dg

from pipeline_platform import warehouse_schema as ws
from pipeline_platform.defs import keys
from pipeline_platform.defs.partitions import SINGLE_RUN, WRITE_HOURS
from pipeline_platform.resources.cloud import CloudResource

GROUP = "catalog"
# The Glue table each lake folder becomes (the crawler names tables after folders).
CATALOG_TABLES = {
    keys.GLUE_READINGS: (ws.READINGS_TABLE, keys.LAKE_READINGS),
    keys.GLUE_QUARANTINE: (ws.QUARANTINE_TABLE, keys.LAKE_QUARANTINE),
    keys.GLUE_RULE_ERRORS: (ws.RULE_ERRORS_TABLE, keys.LAKE_RULE_ERRORS),
}


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
            group_name=GROUP,
        )
        for key, (table, lake_key) in CATALOG_TABLES.items()
    ],
    check_specs=[_drift_check(key) for key in CATALOG_TABLES],
    partitions_def=WRITE_HOURS,
    backfill_policy=SINGLE_RUN,
    name="glue_crawl",
)
def glue_tables(context: dg.AssetExecutionContext, cloud: CloudResource):
    """Crawl the lake so the Data Catalog has its tables, columns and partitions."""
    glue = cloud.client("glue")
    before = {
        key: table_columns(glue, cloud.settings.glue_database, table)
        for key, (table, _) in CATALOG_TABLES.items()
    }
    last = run_crawler(glue, cloud.settings.crawler_name, context.log.info)
    for key, (table, _) in CATALOG_TABLES.items():
        after = table_columns(glue, cloud.settings.glue_database, table)
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
