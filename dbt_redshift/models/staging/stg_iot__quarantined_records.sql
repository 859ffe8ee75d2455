{#
    One row per quarantined Kinesis record (a retried batch quarantines the
    same record again: the latest quarantine wins), typed, with the device it
    most likely came from.
#}

with

source as (

    select * from {{ source('iot', 'quarantined_records') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by sequence_number
            order by quarantined_at desc nulls last
        ) as load_rank
    from source

),

latest as (

    select * from ranked
    where load_rank = 1

),

final as (

    select
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
        cast(arrived_at as {{ dbt.type_timestamp() }}) as arrived_at,
        cast(coalesce(cast(arrived_at as date), dt) as date) as arrival_date,
        cast(quarantined_at as {{ dbt.type_timestamp() }}) as quarantined_at,
        cast(event_source_arn as {{ type_text() }}) as event_source_arn
    from latest

)

select * from final
