{#
    One row per alert raised: a reading with two alert codes gives two rows.
    The comma-separated codes are exploded by a cross join with the contract's
    alert codes and a membership test, the same SQL on Redshift and DuckDB.
    Incremental: a run rebuilds exactly the reading hours its loads changed, so
    a reading updated without its alert loses the alert.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ delete_rebuild_scope('reading_hour', 'hours') }}",
        sort=['alerted_at', 'device_id'],
        dist='device_id',
    )
}}

with

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}
    where has_alert
    {%- if is_incremental() %}
        and {{ in_rebuild_scope('reading_date', 'days') }}
        and {{ in_rebuild_scope('reading_hour', 'hours') }}
    {%- endif %}

),

alert_codes as (

    {{ codes_as_rows(var('alert_codes'), 'alert_code') }}

),

exploded as (

    select
        readings.*,
        alert_codes.alert_code
    from readings
    cross join alert_codes
    where (',' || readings.alerts || ',') like ('%,' || alert_codes.alert_code || ',%')

),

final as (

    select
        -- fixed-point text of the epoch, so the id is the same on both warehouses
        {{ dbt.hash(
            "device_id || '|' || cast(cast(reading_epoch as decimal(20, 6)) as "
            ~ dbt.type_string() ~ ") || '|' || alert_code"
        ) }} as alert_id,
        device_id,
        alert_code,
        reading_epoch,
        reading_at as alerted_at,
        reading_hour,
        reading_date,
        temperature,
        humidity,
        quality_flags,
        sequence_number,
        ingested_at
    from exploded

)

select * from final
