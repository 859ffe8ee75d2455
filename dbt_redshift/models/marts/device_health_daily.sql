{#
    Per device and UTC day: how much of what the device sent was unusable.
    Readings are counted on their reading date; quarantined records on their
    arrival date, attributed to the device id in the payload or else the
    Kinesis partition key (the device id for topic-rule traffic). A device
    whose every record of a day was quarantined still gets its row.
    Incremental: a run rebuilds exactly the days its loads changed (DBT_REBUILD_DAYS:
    reading days of readings, arrival days of quarantined records).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ delete_rebuild_scope('health_date', 'days') }}",
        sort=['health_date', 'device_id'],
        dist='device_id',
    )
}}

with

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}
    {%- if is_incremental() %}
    where {{ in_rebuild_scope('reading_date', 'days') }}
    {%- endif %}

),

quarantined as (

    select * from {{ ref('stg_iot__quarantined_records') }}
    where attributed_device_id is not null
    {%- if is_incremental() %}
        and {{ in_rebuild_scope('arrival_date', 'days') }}
    {%- endif %}

),

readings_daily as (

    select
        device_id,
        reading_date as health_date,
        count(*) as reading_count,
        count(case when is_missing_any then 1 end) as missing_reading_count,
        count(case when is_out_of_range_any then 1 end) as out_of_range_reading_count,
        count(case when is_valid then 1 end) as valid_reading_count
    from readings
    group by device_id, reading_date

),

quarantined_daily as (

    select
        attributed_device_id as device_id,
        arrival_date as health_date,
        count(*) as quarantined_count
    from quarantined
    group by attributed_device_id, arrival_date

),

device_days as (

    select device_id, health_date from readings_daily
    union
    select device_id, health_date from quarantined_daily

),

joined as (

    select
        device_days.device_id,
        device_days.health_date,
        coalesce(readings_daily.reading_count, 0) as reading_count,
        coalesce(readings_daily.valid_reading_count, 0) as valid_reading_count,
        coalesce(readings_daily.missing_reading_count, 0) as missing_reading_count,
        coalesce(readings_daily.out_of_range_reading_count, 0) as out_of_range_reading_count,
        coalesce(quarantined_daily.quarantined_count, 0) as quarantined_count
    from device_days
    left join readings_daily
        on device_days.device_id = readings_daily.device_id
        and device_days.health_date = readings_daily.health_date
    left join quarantined_daily
        on device_days.device_id = quarantined_daily.device_id
        and device_days.health_date = quarantined_daily.health_date

),

final as (

    select
        *,
        -- shares of stored readings; null on a day with none
        case when reading_count = 0 then null
            else cast(missing_reading_count as {{ type_double() }}) / reading_count
        end as missing_share,
        case when reading_count = 0 then null
            else cast(out_of_range_reading_count as {{ type_double() }}) / reading_count
        end as out_of_range_share,
        -- share of everything the device sent that day that was quarantined
        cast(quarantined_count as {{ type_double() }})
            / (reading_count + quarantined_count) as quarantined_share
    from joined

)

select * from final
