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

# --- Alert notifications ---------------------------------------------------
# Notifications are about state changes, not readings: per device and alert code an
# alert is RAISED, then CLEARED (with a hysteresis), with an optional REMINDER while it
# lasts; per device DEVICE_SILENT when no reading arrives for the silence window, then
# DEVICE_BACK with its next reading. Each change is one event on the alert bus.

RAISED = "RAISED"
CLEARED = "CLEARED"
REMINDER = "REMINDER"
#: The code of the silence events, and the state a silent device is in.
DEVICE_SILENT = "DEVICE_SILENT"
DEVICE_BACK = "DEVICE_BACK"
ALERT_STATES = (RAISED, CLEARED, REMINDER, DEVICE_SILENT, DEVICE_BACK)

#: The `source` of every alert event (a custom source: it may not start with `aws.`).
ALERT_EVENT_SOURCE = "iot-data-platform.alerts"
#: The `detail-type` of each state's events, for rules that want one kind.
ALERT_DETAIL_TYPES = {
    RAISED: "Alert raised",
    CLEARED: "Alert cleared",
    REMINDER: "Alert reminder",
    DEVICE_SILENT: "Device silent",
    DEVICE_BACK: "Device back",
}
#: Version of the detail schema below; a change that breaks readers raises it.
ALERT_SCHEMA_VERSION = 1
#: The fields of every event's `detail`, in the order the README documents them.
ALERT_DETAIL_FIELDS = (
    "schema_version",
    "id",  # the same for the same change: a consumer may drop a repeated id
    "device_id",
    "code",  # an alert code, or DEVICE_SILENT for silence events
    "state",  # one of ALERT_STATES
    "measurement",  # temperature or humidity; null for silence events
    "value",  # the reading's value; null for silence events
    "threshold",  # the alert threshold; null for silence events
    "clear_level",  # the value an alert clears at (threshold and hysteresis); null for silence
    "reading_timestamp",  # epoch seconds of the reading behind the change; null for SILENT
    "reading_time",  # the same as ISO-8601 UTC
    "since",  # ISO-8601 UTC: when the alert, or the silence, began
    "since_timestamp",  # the same as epoch seconds
    "silence_window_seconds",  # for silence events: the window that elapsed; else null
    "message",  # one sentence for a person
)

#: The alert topic's message: a JSON object whose first field is the sentence for a person
#: (`message`, as in the detail) and whose second is the event's whole detail (`alert`).
NOTIFICATION_MESSAGE = "message"
NOTIFICATION_ALERT = "alert"

# --- Alert state table (per-device bookkeeping) ---------------------------
# Keyed by device and kind. An `alerts` item, once the device's alerts first changed,
# holds its raised alerts, its silence and the newest reading time whose changes were
# notified. Per Kinesis shard (key: the prefix below and the shard), a `lease` item says
# which execution environment processed the shard last, and `seen` items say when each of
# the shard's devices was last seen (written at most every half silence window).

STATE_KIND = "kind"
ALERTS_KIND = "alerts"
#: A shard's `seen` items are `seen#0`, `seen#1`, ...: one item holds at most 400 KB.
SEEN_KIND = "seen"
#: `seen` items: JSON text of {device id: epoch seconds when a reading of it was last
#: processed}.
SEEN_DEVICES = "devices"
#: `alerts` items: the raised alerts by code, the silence, and a version for conditional writes.
RAISED_ALERTS = "raised"
SILENT_SINCE = "silent_since"
STATE_VERSION = "version"
#: `alerts` items: readings up to this time (epoch seconds) have had their changes notified.
APPLIED_THROUGH = "applied_through"
#: A shard's `lease` item names the execution environment that processed the shard's last
#: batch (`owner`); its key, and that of its `seen` items, is this prefix and the shard (no
#: device id contains `#`).
LEASE_KIND = "lease"
LEASE_OWNER = "owner"
SHARD_KEY_PREFIX = "#shard:"
#: `alerts` items: the changes the item's write announces, as JSON text (a list of the
#: changes' facts, `alert_events.outbox`). Written in the same conditional put as the
#: state it describes, absent from a write that changed nothing; the table's stream
#: carries it to the alert notifier, which puts their events on the bus.
ALERT_OUTBOX = "outbox"
#: The alert notifier's event filter on the state table's stream (Lambda's FilterCriteria
#: syntax): only writes carrying events reach it; `seen`, `lease` and TTL deletions do not.
ALERT_OUTBOX_FILTER = {"dynamodb": {"NewImage": {ALERT_OUTBOX: {"S": [{"exists": True}]}}}}

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
#: The per-device alert state table and the event bus alerts go to; both or neither set
#: (neither: no notifications, readings are only classified and stored).
ENV_ALERT_STATE_TABLE = "ALERT_STATE_TABLE"
ENV_ALERT_BUS_NAME = "ALERT_BUS_NAME"
#: A device sending nothing for this many seconds is DEVICE_SILENT.
ENV_SILENCE_WINDOW_SECONDS = "SILENCE_WINDOW_SECONDS"
#: Hysteresis: HIGH_TEMPERATURE clears at or below the threshold minus this margin,
#: LOW_HUMIDITY at or above the threshold plus this one.
ENV_HIGH_TEMPERATURE_CLEAR_MARGIN_C = "HIGH_TEMPERATURE_CLEAR_MARGIN_C"
ENV_LOW_HUMIDITY_CLEAR_MARGIN_PCT = "LOW_HUMIDITY_CLEAR_MARGIN_PCT"
#: While an alert stays raised, a REMINDER at most this often (seconds of reading time); 0: none.
ENV_ALERT_REMINDER_SECONDS = "ALERT_REMINDER_SECONDS"
#: Days a device's alert state is kept after its last reading.
ENV_ALERT_STATE_TTL_DAYS = "ALERT_STATE_TTL_DAYS"
