"""Asset keys (each says where the data lives) and the key layout of the lake bucket."""

from __future__ import annotations

import dagster as dg

# The change sets', COPY manifests' and states' folders are named where the stack grants them, and
# used from here as the other folders are.
from cloudformation.layout import CHANGES_PREFIX as CHANGES_PREFIX
from cloudformation.layout import EXPORTS_PREFIX, LAKE_PREFIX, PIPELINE_PREFIX
from cloudformation.layout import MANIFEST_PREFIX as MANIFEST_PREFIX
from cloudformation.layout import STATE_PREFIX as STATE_PREFIX
from pipeline_platform import warehouse_schema as ws

IOT_TOPIC = dg.AssetKey(["iot", "sensors"])
KINESIS_STREAM = dg.AssetKey(["kinesis", "sensor_stream"])
STREAM_PROCESSOR = dg.AssetKey(["lambda", "stream_processor"])
DYNAMODB_TABLE = dg.AssetKey(["dynamodb", "sensor_readings"])
S3_QUARANTINE = dg.AssetKey(["s3", "quarantine"])
S3_RULE_ERRORS = dg.AssetKey(["s3", "rule_errors"])
DYNAMODB_EXPORT = dg.AssetKey(["s3", "dynamodb_export"])
LAKE_READINGS = dg.AssetKey(["s3", "lake", ws.READINGS_TABLE])
LAKE_QUARANTINE = dg.AssetKey(["s3", "lake", ws.QUARANTINE_TABLE])
LAKE_RULE_ERRORS = dg.AssetKey(["s3", "lake", ws.RULE_ERRORS_TABLE])
GLUE_READINGS = dg.AssetKey(["glue", ws.READINGS_TABLE])
GLUE_QUARANTINE = dg.AssetKey(["glue", ws.QUARANTINE_TABLE])
GLUE_RULE_ERRORS = dg.AssetKey(["glue", ws.RULE_ERRORS_TABLE])
RAW_READINGS = dg.AssetKey(["warehouse", f"raw_{ws.READINGS_TABLE}"])
RAW_QUARANTINE = dg.AssetKey(["warehouse", f"raw_{ws.QUARANTINE_TABLE}"])
RAW_RULE_ERRORS = dg.AssetKey(["warehouse", f"raw_{ws.RULE_ERRORS_TABLE}"])

#: Each export of the table lands in a folder of its own below this, named after its window.
EXPORT_PREFIX = f"{EXPORTS_PREFIX}{ws.READINGS_TABLE}/"
#: The lake tables' folders (`dt=YYYY-MM-DD/` partitions below each).
LAKE_PREFIXES = {table.name: f"{LAKE_PREFIX}{table.name}/" for table in ws.TABLES}
LAKE_READINGS_PREFIX = LAKE_PREFIXES[ws.READINGS_TABLE]
LAKE_QUARANTINE_PREFIX = LAKE_PREFIXES[ws.QUARANTINE_TABLE]
LAKE_RULE_ERRORS_PREFIX = LAKE_PREFIXES[ws.RULE_ERRORS_TABLE]
#: What each run's export asset exported, for the lake asset (`<first>_<last>.json`).
EXPORT_SUMMARY_PREFIX = f"{PIPELINE_PREFIX}exports/"
