"""The streaming stack: IoT rule -> Kinesis -> Lambda -> DynamoDB, with quarantine, alerts
and alarms.

`build_streaming` only assembles; each concern is a module of its own:
`parameters` (every parameter and condition), `encryption` (the data key),
`buckets` (access logs, quarantine), `ingestion` (stream, topic rule, device
policy), `table`, `processor` (the function, its mapping and on-failure queue),
`alerts` (alert state, bus, rule, topic, silence check, notifier) and `alarms`.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template

from cloudformation.kms import key_arn
from cloudformation.layout import RULE_ERRORS_PREFIX
from cloudformation.naming import Naming
from cloudformation.outputs import StreamingOutput
from cloudformation.parameters import export_outputs
from cloudformation.streaming.alarms import add_alarms
from cloudformation.streaming.alerts import (
    AlertPath,
    add_alert_delivery,
    add_alert_notifier,
    add_alert_state,
    add_silence_check,
    alert_alarms,
    alert_environment,
)
from cloudformation.streaming.buckets import add_buckets
from cloudformation.streaming.encryption import add_data_key
from cloudformation.streaming.ingestion import (
    add_device_policy,
    add_stream,
    add_topic_rule,
)
from cloudformation.streaming.parameters import declare_parameters
from cloudformation.streaming.processor import add_stream_processor, environment
from cloudformation.streaming.table import add_readings_table

__all__ = ["RULE_ERRORS_PREFIX", "build_streaming"]


def build_streaming(naming: Naming) -> Template:
    """The streaming stack's template for one environment and region."""
    t = Template(
        Description=f"IoT streaming ingestion ({naming.env}, {naming.region}): IoT topic rule, "
        "Kinesis, stream processor Lambda, DynamoDB, quarantine bucket, alert notifications "
        "and alarms."
    )
    params = declare_parameters(t)
    data_key = key_arn(add_data_key(t, naming))
    buckets = add_buckets(
        t, naming, data_key, quarantine_retention_days=params.quarantine_retention_days
    )
    stream = add_stream(t, naming, params.ingestion, data_key)
    table = add_readings_table(t, naming, params.table, data_key)
    alert_state = add_alert_state(t, naming, data_key)
    processor = add_stream_processor(
        t,
        naming,
        params,
        stream=stream,
        table=table,
        quarantine=buckets.quarantine,
        alerts=alert_state,
        key_arn=data_key,
    )
    topic, rule, dead_letters = add_alert_delivery(t, naming, alert_state, data_key)
    # The alert functions get the stream processor's settings: one configuration, read by
    # one loader.
    settings = {
        **environment(params.settings, table, buckets.quarantine),
        **alert_environment(params.alerts, alert_state),
    }
    silence_check = add_silence_check(
        t,
        naming,
        params,
        state=alert_state,
        readings=table,
        environment=settings,
        key_arn=data_key,
    )
    notifier = add_alert_notifier(
        t, naming, params, state=alert_state, environment=settings, key_arn=data_key
    )
    alerts = AlertPath(alert_state, topic, rule, dead_letters, silence_check, notifier)
    add_topic_rule(
        t, naming, params.ingestion, stream=stream, quarantine=buckets.quarantine, key_arn=data_key
    )
    add_device_policy(t, naming, params.ingestion)
    alarm_topic = add_alarms(
        t,
        naming,
        function=processor.function,
        on_failure_queue=processor.on_failure_queue,
        iterator_age_ms=params.iterator_age_alarm_ms,
        key_arn=data_key,
        more=alert_alarms(alerts),
    )

    function, on_failure = processor.function, processor.on_failure_queue
    export_outputs(
        t,
        {
            StreamingOutput.TABLE_NAME: (Ref(table), "DynamoDB table of readings."),
            StreamingOutput.TABLE_ARN: (GetAtt(table, "Arn"), "ARN of the readings table."),
            StreamingOutput.STREAM_NAME: (Ref(stream), "Kinesis stream the topic rule feeds."),
            StreamingOutput.STREAM_ARN: (GetAtt(stream, "Arn"), "ARN of the stream."),
            StreamingOutput.FUNCTION_NAME: (Ref(function), "Stream processor function."),
            StreamingOutput.FUNCTION_ARN: (
                GetAtt(function, "Arn"),
                "ARN of the stream processor.",
            ),
            StreamingOutput.QUARANTINE_BUCKET_NAME: (
                Ref(buckets.quarantine),
                "Bucket of quarantined records and errors.",
            ),
            StreamingOutput.QUARANTINE_PREFIX: (
                Ref(params.settings.quarantine_prefix),
                "Key prefix of quarantined records.",
            ),
            StreamingOutput.RULE_ERRORS_PREFIX: (
                RULE_ERRORS_PREFIX,
                "Key prefix of messages the rule failed on.",
            ),
            StreamingOutput.ACCESS_LOG_BUCKET_NAME: (
                Ref(buckets.access_logs),
                "Bucket receiving S3 access logs.",
            ),
            StreamingOutput.ON_FAILURE_QUEUE_URL: (
                Ref(on_failure),
                "Queue of skipped-batch records.",
            ),
            StreamingOutput.ON_FAILURE_QUEUE_ARN: (
                GetAtt(on_failure, "Arn"),
                "ARN of the on-failure queue.",
            ),
            # The rule's name as a literal: the same value as Ref, and it resolves even where
            # the emulator does not create topic rules.
            StreamingOutput.TOPIC_RULE_NAME: (
                naming.topic_rule,
                "IoT topic rule routing readings to Kinesis.",
            ),
            StreamingOutput.SENSOR_TOPIC: (
                Ref(params.ingestion.sensor_topic),
                "MQTT topic of sensor readings.",
            ),
            StreamingOutput.DEVICE_POLICY_NAME: (
                naming.device_policy,
                "IoT policy to attach to device certificates.",
            ),
            StreamingOutput.ALARM_TOPIC_ARN: (Ref(alarm_topic), "SNS topic the alarms notify."),
            StreamingOutput.DATA_KEY_ARN: (data_key, "KMS key encrypting the streaming data."),
            StreamingOutput.ALERT_TOPIC_ARN: (
                Ref(topic),
                "SNS topic of alert notifications: subscribe e-mail or programs here.",
            ),
            StreamingOutput.ALERT_BUS_NAME: (
                GetAtt(alert_state.bus, "Name"),
                "Event bus of alert state changes; add rules for your own targets.",
            ),
            StreamingOutput.ALERT_BUS_ARN: (GetAtt(alert_state.bus, "Arn"), "ARN of the bus."),
            StreamingOutput.ALERT_STATE_TABLE_NAME: (
                Ref(alert_state.table),
                "DynamoDB table of per-device alert state.",
            ),
            StreamingOutput.ALERT_DEAD_LETTER_QUEUE_URL: (
                Ref(dead_letters),
                "Queue of alert events the rule could not deliver.",
            ),
            StreamingOutput.ALERT_NOTIFIER_FAILURE_QUEUE_URL: (
                Ref(notifier.on_failure_queue),
                "Queue of alert state stream batches the notifier gave up on.",
            ),
            StreamingOutput.SILENCE_CHECK_FUNCTION_NAME: (
                Ref(silence_check),
                "Function announcing silent devices every minute.",
            ),
        },
    )
    return t
