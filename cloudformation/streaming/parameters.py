"""The streaming stack's parameters and the conditions derived from them, declared together.

Each concern receives the `StreamingParameters` and takes what it needs. The
function's settings default to what the function itself assumes when a setting
is unset (`stream_processor.config`), so the stack and the code cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Not, Parameter, Ref, Template

from cloudformation.naming import SENSOR_TOPIC
from cloudformation.parameters import KEY_PREFIX_PATTERN, choice, number, text
from stream_processor import config

#: Retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

# Condition names, so a resource's `If` and the declaration below name the same one.
STREAM_IS_ON_DEMAND = "StreamIsOnDemand"
TABLE_IS_PROVISIONED = "TableIsProvisioned"
HAS_RESERVED_CONCURRENCY = "HasReservedConcurrency"


@dataclass(frozen=True)
class IngestionParameters:
    """What the topic rule reads from and the stream it writes to."""

    sensor_topic: Parameter
    stream_mode: Parameter
    shard_count: Parameter
    stream_retention_hours: Parameter


@dataclass(frozen=True)
class FunctionParameters:
    """The function's code, size and logs."""

    code_bucket: Parameter
    code_key: Parameter
    memory_mb: Parameter
    timeout_seconds: Parameter
    reserved_concurrency: Parameter
    log_retention_days: Parameter


@dataclass(frozen=True)
class ProcessorSettings:
    """The settings the function reads from its environment (`stream_processor.config`)."""

    quarantine_prefix: Parameter
    high_temperature_c: Parameter
    low_humidity_pct: Parameter
    temperature_min_c: Parameter
    temperature_max_c: Parameter
    humidity_min_pct: Parameter
    humidity_max_pct: Parameter
    ttl_days: Parameter
    write_concurrency: Parameter
    earliest_timestamp: Parameter
    max_clock_skew_seconds: Parameter


@dataclass(frozen=True)
class MappingParameters:
    """How the event source mapping batches, retries and gives up."""

    batch_size: Parameter
    batching_window_seconds: Parameter
    parallelization_factor: Parameter
    starting_position: Parameter
    maximum_retry_attempts: Parameter
    maximum_record_age_seconds: Parameter


@dataclass(frozen=True)
class TableParameters:
    """The table's capacity mode and provisioned units."""

    billing_mode: Parameter
    read_capacity: Parameter
    write_capacity: Parameter


@dataclass(frozen=True)
class AlertParameters:
    """When alerts clear, remind and fall silent, and how long their state is kept."""

    silence_window_seconds: Parameter
    high_temperature_clear_margin_c: Parameter
    low_humidity_clear_margin_pct: Parameter
    reminder_seconds: Parameter
    state_ttl_days: Parameter


@dataclass(frozen=True)
class StreamingParameters:
    """The streaming stack's parameters, one group per concern that reads them."""

    ingestion: IngestionParameters
    function: FunctionParameters
    settings: ProcessorSettings
    mapping: MappingParameters
    table: TableParameters
    alerts: AlertParameters
    quarantine_retention_days: Parameter
    iterator_age_alarm_ms: Parameter


def declare_parameters(t: Template) -> StreamingParameters:
    """Add the streaming stack's parameters and conditions to `t`; return the parameters."""
    params = StreamingParameters(
        ingestion=_ingestion(t),
        function=_function(t),
        settings=_settings(t),
        mapping=_mapping(t),
        table=_table(t),
        alerts=_alerts(t),
        quarantine_retention_days=number(
            t,
            "QuarantineRetentionDays",
            90,
            "Days quarantined records and rule errors are kept.",
            minimum=1,
            maximum=3650,
        ),
        iterator_age_alarm_ms=number(
            t,
            "IteratorAgeAlarmMs",
            60000,
            "Alarm when the oldest unprocessed record is older than this (ms).",
            minimum=1000,
            maximum=604800000,
        ),
    )
    t.add_condition(STREAM_IS_ON_DEMAND, Equals(Ref(params.ingestion.stream_mode), "ON_DEMAND"))
    t.add_condition(TABLE_IS_PROVISIONED, Equals(Ref(params.table.billing_mode), "PROVISIONED"))
    t.add_condition(
        HAS_RESERVED_CONCURRENCY, Not(Equals(Ref(params.function.reserved_concurrency), -1))
    )
    return params


def _ingestion(t: Template) -> IngestionParameters:
    """Declare the parameters of the topic and the stream."""
    return IngestionParameters(
        sensor_topic=text(
            t,
            "SensorTopic",
            "MQTT topic the devices publish readings to.",
            default=SENSOR_TOPIC,
            pattern=r"^[^#+$]+$",
        ),
        stream_mode=choice(
            t, "StreamMode", "PROVISIONED", ["PROVISIONED", "ON_DEMAND"], "Kinesis capacity mode."
        ),
        shard_count=number(
            t, "ShardCount", 1, "Shards when StreamMode is PROVISIONED.", minimum=1, maximum=500
        ),
        stream_retention_hours=number(
            t,
            "StreamRetentionHours",
            24,
            "How long Kinesis keeps records.",
            minimum=24,
            maximum=8760,
        ),
    )


def _function(t: Template) -> FunctionParameters:
    """Declare the parameters of the function's code, size and logs."""
    return FunctionParameters(
        code_bucket=text(t, "CodeS3Bucket", "Bucket holding the packaged stream_processor zip."),
        code_key=text(t, "CodeS3Key", "Key of the zip; it contains the zip's sha256."),
        memory_mb=number(
            t, "FunctionMemoryMb", 256, "Stream processor memory (MB).", minimum=128, maximum=10240
        ),
        timeout_seconds=number(
            t, "FunctionTimeoutSeconds", 60, "Stream processor timeout (s).", minimum=1, maximum=900
        ),
        reserved_concurrency=number(
            t,
            "ReservedConcurrency",
            -1,
            "Reserved concurrent executions; -1 leaves the function unreserved.",
            minimum=-1,
            maximum=1000,
        ),
        log_retention_days=t.add_parameter(
            Parameter(
                "LogRetentionDays",
                Type="Number",
                Default=365,
                AllowedValues=list(LOG_RETENTION_DAYS),
                Description="Days the function's logs are kept.",
            )
        ),
    )


def _settings(t: Template) -> ProcessorSettings:
    """Declare the parameters of the function's settings."""
    return ProcessorSettings(
        quarantine_prefix=text(
            t,
            "QuarantinePrefix",
            "Key prefix for quarantined records.",
            default=config.DEFAULT_QUARANTINE_PREFIX,
            pattern=KEY_PREFIX_PATTERN,
        ),
        high_temperature_c=number(
            t,
            "HighTemperatureC",
            config.DEFAULT_HIGH_TEMPERATURE_C,
            "Alert above this temperature (C).",
            minimum=-40,
            maximum=125,
        ),
        low_humidity_pct=number(
            t,
            "LowHumidityPct",
            config.DEFAULT_LOW_HUMIDITY_PCT,
            "Alert below this relative humidity (%).",
            minimum=0,
            maximum=100,
        ),
        temperature_min_c=number(
            t,
            "TemperatureMinC",
            config.DEFAULT_TEMPERATURE_MIN_C,
            "Lowest temperature the sensors can read (C).",
            minimum=-273,
            maximum=1000,
        ),
        temperature_max_c=number(
            t,
            "TemperatureMaxC",
            config.DEFAULT_TEMPERATURE_MAX_C,
            "Highest temperature the sensors can read (C).",
            minimum=-273,
            maximum=1000,
        ),
        humidity_min_pct=number(
            t,
            "HumidityMinPct",
            config.DEFAULT_HUMIDITY_MIN_PCT,
            "Lowest physically possible humidity (%).",
            minimum=0,
            maximum=100,
        ),
        humidity_max_pct=number(
            t,
            "HumidityMaxPct",
            config.DEFAULT_HUMIDITY_MAX_PCT,
            "Highest physically possible humidity (%).",
            minimum=0,
            maximum=100,
        ),
        ttl_days=number(
            t,
            "TtlDays",
            config.DEFAULT_TTL_DAYS,
            "Days a reading stays in the table after ingestion.",
            minimum=1,
            maximum=3650,
        ),
        write_concurrency=number(
            t,
            "WriteConcurrency",
            config.DEFAULT_WRITE_CONCURRENCY,
            "Concurrent BatchWriteItem requests per invocation.",
            minimum=1,
            maximum=64,
        ),
        earliest_timestamp=number(
            t,
            "EarliestTimestamp",
            config.DEFAULT_EARLIEST_TIMESTAMP,
            "Readings dated before this epoch second are quarantined (a clock never set).",
            minimum=0,
            maximum=4102444800,  # 2100-01-01
        ),
        max_clock_skew_seconds=number(
            t,
            "MaxClockSkewSeconds",
            config.DEFAULT_MAX_CLOCK_SKEW_S,
            "Readings dated more than this after their arrival in the stream are quarantined.",
            minimum=0,
            maximum=86400,
        ),
    )


def _mapping(t: Template) -> MappingParameters:
    """Declare the parameters of the event source mapping."""
    return MappingParameters(
        # Measured (benchmarks/bench_stream_processor.py, 5 ms round trips): the handler's
        # cost per record falls from ~740 us at 10 records and ~160 us at 100 to ~110 us at
        # 250-1,000 and ~85-95 us beyond, where it is CPU-bound. 1,000 is what a saturated
        # shard (1,000 records/s) delivers in one 1 s window, so under normal load a batch
        # closes on the window, never waits on BatchSize; larger batches only come from a
        # backlog and would mostly lengthen redelivery after a failure. The window: AWS
        # polls a shard once a second anyway, so 1 s adds little to that (p50 ~0.5 s, p99
        # ~1 s put-to-invoke on the local runner at 100 records/s); longer windows would
        # trade real-time alerts for batches a quiet shard cannot fill.
        batch_size=number(
            t, "BatchSize", 1000, "Records per Lambda invocation.", minimum=1, maximum=10000
        ),
        batching_window_seconds=number(
            t,
            "BatchingWindowSeconds",
            1,
            "Wait up to this long to fill a batch.",
            minimum=0,
            maximum=300,
        ),
        parallelization_factor=number(
            t,
            "ParallelizationFactor",
            1,
            "Concurrent batches per shard (order is kept per partition key).",
            minimum=1,
            maximum=10,
        ),
        starting_position=choice(
            t,
            "StartingPosition",
            "TRIM_HORIZON",
            ["TRIM_HORIZON", "LATEST"],
            "Where a new mapping starts reading the stream.",
        ),
        maximum_retry_attempts=number(
            t,
            "MaximumRetryAttempts",
            3,
            "Retries of a failing batch before it goes to the on-failure queue.",
            minimum=0,
            maximum=10000,
        ),
        maximum_record_age_seconds=number(
            t,
            "MaximumRecordAgeSeconds",
            3600,
            "Records older than this go to the on-failure queue unprocessed.",
            minimum=60,
            maximum=604800,
        ),
    )


def _table(t: Template) -> TableParameters:
    """Declare the parameters of the table."""
    return TableParameters(
        billing_mode=choice(
            t,
            "TableBillingMode",
            "PAY_PER_REQUEST",
            ["PAY_PER_REQUEST", "PROVISIONED"],
            "DynamoDB capacity mode.",
        ),
        read_capacity=number(
            t, "TableReadCapacity", 5, "Read units when PROVISIONED.", minimum=1, maximum=40000
        ),
        write_capacity=number(
            t, "TableWriteCapacity", 5, "Write units when PROVISIONED.", minimum=1, maximum=40000
        ),
    )


def _alerts(t: Template) -> AlertParameters:
    """Declare the parameters of the alert notifications."""
    return AlertParameters(
        silence_window_seconds=number(
            t,
            "SilenceWindowSeconds",
            config.DEFAULT_SILENCE_WINDOW_S,
            "A device sending nothing for this long is DEVICE_SILENT (checked every minute).",
            minimum=1,
            maximum=604800,
        ),
        high_temperature_clear_margin_c=number(
            t,
            "HighTemperatureClearMarginC",
            config.DEFAULT_HIGH_TEMPERATURE_CLEAR_MARGIN_C,
            "HIGH_TEMPERATURE clears at or below the threshold minus this (C).",
            minimum=0,
            maximum=100,
        ),
        low_humidity_clear_margin_pct=number(
            t,
            "LowHumidityClearMarginPct",
            config.DEFAULT_LOW_HUMIDITY_CLEAR_MARGIN_PCT,
            "LOW_HUMIDITY clears at or above the threshold plus this (%).",
            minimum=0,
            maximum=100,
        ),
        reminder_seconds=number(
            t,
            "AlertReminderSeconds",
            config.DEFAULT_ALERT_REMINDER_S,
            "While an alert stays raised, remind at most this often (s of reading time); 0: never.",
            minimum=0,
            maximum=604800,
        ),
        state_ttl_days=number(
            t,
            "AlertStateTtlDays",
            config.DEFAULT_ALERT_STATE_TTL_DAYS,
            "Days a device's alert state is kept after its last reading.",
            minimum=1,
            maximum=3650,
        ),
    )
