{#
    Every published message that was not stored, one row each: the records the
    stream processor quarantined (by Kinesis sequence number) and the messages
    the topic rule could not route (by the error action's object key, reason
    TOPIC_RULE_ERROR), typed alike, with the device a record is attributed to.
    Stored readings plus these rows account for every message published.
#}

with

quarantined as (

    select * from {{ source('iot', 'quarantined_records') }}

),

rule_errors as (

    select * from {{ source('iot', 'rule_errors') }}

),

from_stream_processor as (

    select
        cast(sequence_number as {{ type_text() }}) as record_id,
        cast('stream_processor' as {{ type_text() }}) as record_source,
        cast(sequence_number as {{ type_text() }}) as sequence_number,
        cast(reason as {{ type_text() }}) as reason,
        cast(detail as {{ type_text() }}) as detail,
        cast(device_id as {{ type_text() }}) as device_id,
        cast(partition_key as {{ type_text() }}) as partition_key,
        -- topic-rule traffic is partitioned by device id, so the partition key
        -- names the device when the payload was too broken to read it from
        cast(coalesce(device_id, partition_key) as {{ type_text() }})
            as attributed_device_id,
        cast(payload_base64 as {{ type_text() }}) as payload_base64,
        cast(null as {{ type_text() }}) as rule_name,
        cast(null as {{ type_text() }}) as topic,
        cast(null as {{ type_text() }}) as client_id,
        cast(arrived_at as {{ dbt.type_timestamp() }}) as arrived_at,
        cast(coalesce(cast(arrived_at as date), dt) as date) as arrival_date,
        cast(quarantined_at as {{ dbt.type_timestamp() }}) as quarantined_at,
        cast(event_source_arn as {{ type_text() }}) as event_source_arn
    from quarantined

),

from_topic_rule as (

    select
        cast(error_id as {{ type_text() }}) as record_id,
        cast('topic_rule' as {{ type_text() }}) as record_source,
        cast(null as {{ type_text() }}) as sequence_number,
        cast(reason as {{ type_text() }}) as reason,
        cast(error_message as {{ type_text() }}) as detail,
        cast(null as {{ type_text() }}) as device_id,
        cast(null as {{ type_text() }}) as partition_key,
        -- the message never reached the stream: nothing says which device sent it
        cast(null as {{ type_text() }}) as attributed_device_id,
        cast(payload_base64 as {{ type_text() }}) as payload_base64,
        cast(rule_name as {{ type_text() }}) as rule_name,
        cast(topic as {{ type_text() }}) as topic,
        cast(client_id as {{ type_text() }}) as client_id,
        cast(errored_at as {{ dbt.type_timestamp() }}) as arrived_at,
        cast(dt as date) as arrival_date,
        cast(errored_at as {{ dbt.type_timestamp() }}) as quarantined_at,
        cast(null as {{ type_text() }}) as event_source_arn
    from rule_errors

),

final as (

    select * from from_stream_processor
    union all
    select * from from_topic_rule

)

select * from final
