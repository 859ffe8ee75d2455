"""External assets of the real-time path, and the observation of the readings table.

Dagster does not run the streaming path; these assets put it in the lineage
graph so the batch side hangs off the table the stream processor writes.
"""

from datetime import UTC, datetime

import dagster as dg

from pipeline_platform.defs import keys
from pipeline_platform.resources.cloud import CloudResource
from stream_processor import contract

GROUP = "streaming"

iot_topic = dg.AssetSpec(
    keys.IOT_TOPIC,
    description="MQTT topic `iot/sensors` that devices publish JSON readings to (AWS IoT Core).",
    kinds={"aws", "iot"},
    group_name=GROUP,
)
kinesis_stream = dg.AssetSpec(
    keys.KINESIS_STREAM,
    deps=[keys.IOT_TOPIC],
    description="Kinesis data stream fed by the IoT topic rule, partitioned by device id.",
    kinds={"kinesis"},
    group_name=GROUP,
)
stream_processor = dg.AssetSpec(
    keys.STREAM_PROCESSOR,
    deps=[keys.KINESIS_STREAM],
    description="Lambda stream processor: validates, classifies and stores each reading.",
    kinds={"lambda", "python"},
    group_name=GROUP,
)
quarantine_objects = dg.AssetSpec(
    keys.S3_QUARANTINE,
    deps=[keys.STREAM_PROCESSOR],
    description="JSON lines of records the stream processor quarantined, by arrival date.",
    kinds={"s3"},
    group_name=GROUP,
)

_table_spec = dg.AssetSpec(
    keys.DYNAMODB_TABLE,
    deps=[keys.STREAM_PROCESSOR],
    description="DynamoDB table of readings keyed by device and time: the real-time store.",
    kinds={"dynamodb"},
    group_name=GROUP,
)


@dg.multi_observable_source_asset(specs=[_table_spec], name="observe_dynamodb_sensor_readings")
def readings_table(cloud: CloudResource):
    """Observe the readings table: approximate item count and the latest ingestion time seen.

    The item count comes from DescribeTable (refreshed by AWS about every six
    hours); the latest ingestion time from a projection scan, so it is exact.
    """
    dynamodb = cloud.client("dynamodb")
    table = dynamodb.describe_table(TableName=cloud.table_name)["Table"]
    latest = None
    scanned = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=cloud.table_name,
        ProjectionExpression="#i",
        ExpressionAttributeNames={"#i": contract.INGESTED_AT},
    ):
        scanned += page["Count"]
        for item in page["Items"]:
            value = float(item.get(contract.INGESTED_AT, {}).get("N", "nan"))
            if latest is None or value > latest:
                latest = value
    metadata = {
        "table_name": table["TableName"],
        "item_count": scanned,
        "described_item_count": table.get("ItemCount", 0),
    }
    if latest is not None:
        metadata["latest_ingested_at"] = dg.MetadataValue.timestamp(
            datetime.fromtimestamp(latest, tz=UTC)
        )
    yield dg.ObserveResult(
        asset_key=keys.DYNAMODB_TABLE,
        metadata=metadata,
        data_version=dg.DataVersion(f"{scanned}:{latest}"),
    )


external_specs = [iot_topic, kinesis_stream, stream_processor, quarantine_objects]
