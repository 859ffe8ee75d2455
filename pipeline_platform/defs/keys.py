"""Asset keys: each says where the data lives."""

from __future__ import annotations

import dagster as dg

IOT_TOPIC = dg.AssetKey(["iot", "sensors"])
KINESIS_STREAM = dg.AssetKey(["kinesis", "sensor_stream"])
STREAM_PROCESSOR = dg.AssetKey(["lambda", "stream_processor"])
DYNAMODB_TABLE = dg.AssetKey(["dynamodb", "sensor_readings"])
S3_QUARANTINE = dg.AssetKey(["s3", "quarantine"])
DYNAMODB_EXPORT = dg.AssetKey(["s3", "dynamodb_export"])
LAKE_READINGS = dg.AssetKey(["s3", "lake", "sensor_readings"])
LAKE_QUARANTINE = dg.AssetKey(["s3", "lake", "quarantined_records"])
GLUE_READINGS = dg.AssetKey(["glue", "sensor_readings"])
GLUE_QUARANTINE = dg.AssetKey(["glue", "quarantined_records"])
RAW_READINGS = dg.AssetKey(["warehouse", "raw_sensor_readings"])
RAW_QUARANTINE = dg.AssetKey(["warehouse", "raw_quarantined_records"])

EXPORT_PREFIX = "exports/sensor_readings/"
LAKE_READINGS_PREFIX = "lake/sensor_readings/"
LAKE_QUARANTINE_PREFIX = "lake/quarantined_records/"
