"""External assets of the real-time path, and the observation of the readings table.

Dagster does not run the streaming path; these assets put it in the lineage
graph so the batch side hangs off the table the stream processor writes.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from cloudformation.naming import SENSOR_TOPIC
from pipeline_platform.defs import keys
from pipeline_platform.resources.cloud import CloudResource
from stream_processor import telemetry

GROUP = "streaming"

iot_topic = dg.AssetSpec(
    keys.IOT_TOPIC,
    description=f"MQTT topic that devices publish JSON readings to (AWS IoT Core; `{SENSOR_TOPIC}` "
    "unless the stack's SensorTopic parameter says otherwise).",
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

rule_error_objects = dg.AssetSpec(
    keys.S3_RULE_ERRORS,
    deps=[keys.IOT_TOPIC],
    description="JSON records of messages the topic rule could not route (its error action): "
    "payload, topic, client id and failure, under the quarantine bucket's `errors/`.",
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


#: How far back the observation looks for the stream processor's writes.
OBSERVED_WINDOW = timedelta(hours=24)
_PERIOD_SECONDS = 300


@dg.multi_observable_source_asset(specs=[_table_spec], name="observe_dynamodb_sensor_readings")
def readings_table(cloud: CloudResource):
    """Observe the readings table without reading it: its size and its latest writes.

    The item count comes from DescribeTable (AWS refreshes it about every six
    hours). What was written lately comes from the stream processor's `stored`
    metric, which its batch log lines publish through CloudWatch EMF: the sum
    over the last day and the five minutes of the latest write. Scanning the
    table instead would read every item on every observation.
    """
    table = cloud.client("dynamodb").describe_table(TableName=cloud.settings.table_name)["Table"]
    end = datetime.now(UTC)
    points = cloud.client("cloudwatch").get_metric_statistics(
        Namespace=telemetry.NAMESPACE,
        MetricName=telemetry.STORED_METRIC,
        Dimensions=[{"Name": "FunctionName", "Value": cloud.settings.function_name}],
        StartTime=end - OBSERVED_WINDOW,
        EndTime=end,
        Period=_PERIOD_SECONDS,
        Statistics=["Sum"],
    )["Datapoints"]
    written = [p for p in points if p["Sum"] > 0]
    stored = int(sum(p["Sum"] for p in written))
    latest = max((p["Timestamp"] for p in written), default=None)
    metadata = {
        "table_name": table["TableName"],
        "item_count": table.get("ItemCount", 0),
        "stored_last_24h": stored,
    }
    if latest is not None:
        metadata["latest_write_period"] = dg.MetadataValue.timestamp(latest)
    yield dg.ObserveResult(
        asset_key=keys.DYNAMODB_TABLE,
        metadata=metadata,
        data_version=dg.DataVersion(f"{latest.isoformat() if latest else 'none'}:{stored}"),
    )


external_specs = [
    iot_topic,
    kinesis_stream,
    stream_processor,
    quarantine_objects,
    rule_error_objects,
]
