"""The reading contract: the one place that says what a sensor reading is.

Everything downstream (the DynamoDB table, the lake, the Glue catalog, the
warehouse, the dbt sources) follows from the names defined here. This module
is pure data and imports only the standard library, so the infrastructure
code and the batch pipeline may import it without pulling in the handler.
"""

from __future__ import annotations

# --- DynamoDB item layout -------------------------------------------------

#: Partition key: the device's identifier (S).
DEVICE_ID = "device_id"
#: Sort key: the reading's time in epoch seconds (N), milliseconds converted.
TIMESTAMP = "timestamp"
TEMPERATURE = "temperature"
HUMIDITY = "humidity"
#: List of alert codes (L of S); empty when the reading raised none.
ALERTS = "alerts"
#: List of data-quality codes (L of S); empty for a clean reading.
QUALITY_FLAGS = "quality_flags"
#: Kinesis sequence number the reading arrived with (S).
SEQUENCE_NUMBER = "sequence_number"
#: When the stream processor stored the reading, epoch seconds (N).
INGESTED_AT = "ingested_at"
#: TTL attribute: ingestion time plus the retention period, epoch seconds (N).
EXPIRES_AT = "expires_at"
#: UTC date of the reading (S, YYYY-MM-DD), present only on readings with
#: alerts: it is the partition key of the sparse alerts index.
ALERT_DATE = "alert_date"

#: Sparse global secondary index listing recent alerts by day.
ALERTS_INDEX = "alerts-by-date"

#: Attributes the processor writes itself; a payload may not set them.
RESERVED_ATTRIBUTES = frozenset(
    {ALERTS, QUALITY_FLAGS, SEQUENCE_NUMBER, INGESTED_AT, EXPIRES_AT, ALERT_DATE}
)

#: The measurements every reading is expected to carry.
MEASUREMENTS = (TEMPERATURE, HUMIDITY)

# --- Codes ----------------------------------------------------------------

HIGH_TEMPERATURE = "HIGH_TEMPERATURE"
LOW_HUMIDITY = "LOW_HUMIDITY"
ALERT_CODES = (HIGH_TEMPERATURE, LOW_HUMIDITY)

MISSING_TEMPERATURE = "MISSING_TEMPERATURE"
MISSING_HUMIDITY = "MISSING_HUMIDITY"
TEMPERATURE_OUT_OF_RANGE = "TEMPERATURE_OUT_OF_RANGE"
HUMIDITY_OUT_OF_RANGE = "HUMIDITY_OUT_OF_RANGE"
COERCED_TEMPERATURE = "COERCED_TEMPERATURE"
COERCED_HUMIDITY = "COERCED_HUMIDITY"
QUALITY_FLAG_CODES = (
    MISSING_TEMPERATURE,
    MISSING_HUMIDITY,
    TEMPERATURE_OUT_OF_RANGE,
    HUMIDITY_OUT_OF_RANGE,
    COERCED_TEMPERATURE,
    COERCED_HUMIDITY,
)

# Why a record was quarantined instead of stored.
EMPTY_PAYLOAD = "EMPTY_PAYLOAD"
INVALID_JSON = "INVALID_JSON"
NOT_AN_OBJECT = "NOT_AN_OBJECT"
MISSING_DEVICE_ID = "MISSING_DEVICE_ID"
INVALID_DEVICE_ID = "INVALID_DEVICE_ID"
MISSING_TIMESTAMP = "MISSING_TIMESTAMP"
INVALID_TIMESTAMP = "INVALID_TIMESTAMP"
#: A valid time before the earliest plausible one (2000-01-01 unless configured): a device
#: whose clock was never set. Stored, every such reading of a device would share a few keys
#: near the epoch and overwrite each other.
TIMESTAMP_TOO_EARLY = "TIMESTAMP_TOO_EARLY"
#: A time further ahead of the record's Kinesis arrival than the allowed clock skew: the
#: device's clock runs fast, so the reading's key (and its lake partition) would be wrong.
TIMESTAMP_IN_FUTURE = "TIMESTAMP_IN_FUTURE"
INVALID_TEMPERATURE = "INVALID_TEMPERATURE"
INVALID_HUMIDITY = "INVALID_HUMIDITY"
INVALID_FIELD = "INVALID_FIELD"
RESERVED_FIELD = "RESERVED_FIELD"
ITEM_TOO_LARGE = "ITEM_TOO_LARGE"
QUARANTINE_REASONS = (
    EMPTY_PAYLOAD,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_DEVICE_ID,
    INVALID_DEVICE_ID,
    MISSING_TIMESTAMP,
    INVALID_TIMESTAMP,
    TIMESTAMP_TOO_EARLY,
    TIMESTAMP_IN_FUTURE,
    INVALID_TEMPERATURE,
    INVALID_HUMIDITY,
    INVALID_FIELD,
    RESERVED_FIELD,
    ITEM_TOO_LARGE,
)

#: Why a message never reached the function: the topic rule's action failed (a payload
#: that is not JSON, or without a `device_id`, has no partition key) and the rule's error
#: action kept it under the quarantine bucket's `errors/`. The batch side loads those
#: records beside the function's quarantine with this code.
TOPIC_RULE_ERROR = "TOPIC_RULE_ERROR"

# --- Quarantine record layout (one JSON line per record in S3) ------------

QUARANTINE_FIELDS = (
    "reason",
    "detail",
    "device_id",  # when it could be read from the payload, else null
    "data",  # base64 of the raw bytes, exactly as they arrived
    "sequence_number",
    "partition_key",
    "approximate_arrival_timestamp",
    "event_source_arn",
    "quarantined_at",
)

# --- Function configuration (environment variable names) ------------------

ENV_TABLE_NAME = "TABLE_NAME"
ENV_QUARANTINE_BUCKET = "QUARANTINE_BUCKET"
ENV_QUARANTINE_PREFIX = "QUARANTINE_PREFIX"
ENV_HIGH_TEMPERATURE_C = "HIGH_TEMPERATURE_C"
ENV_LOW_HUMIDITY_PCT = "LOW_HUMIDITY_PCT"
ENV_TEMPERATURE_MIN_C = "TEMPERATURE_MIN_C"
ENV_TEMPERATURE_MAX_C = "TEMPERATURE_MAX_C"
ENV_HUMIDITY_MIN_PCT = "HUMIDITY_MIN_PCT"
ENV_HUMIDITY_MAX_PCT = "HUMIDITY_MAX_PCT"
ENV_TTL_DAYS = "TTL_DAYS"
ENV_WRITE_CONCURRENCY = "WRITE_CONCURRENCY"
#: Earliest plausible reading time: ISO-8601 (naive means UTC) or epoch seconds.
ENV_EARLIEST_TIMESTAMP = "EARLIEST_TIMESTAMP"
#: How far (seconds) a reading may be dated after its record reached Kinesis.
ENV_MAX_CLOCK_SKEW_SECONDS = "MAX_CLOCK_SKEW_SECONDS"
