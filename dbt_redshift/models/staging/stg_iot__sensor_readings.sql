{#
    One row per reading (device_id, reading_epoch), typed, with a boolean per
    alert and quality-flag code and the validity rules every mart uses. The
    warehouse load keeps one row per key (the latest write wins in the lake), so
    there is nothing to deduplicate here, and a filter on reading_date or
    reading_hour reaches the raw table's dt.
#}
{%- set known_columns = [
    'device_id', 'reading_epoch', 'reading_at', 'temperature', 'humidity', 'alerts',
    'quality_flags', 'sequence_number', 'ingested_at', 'written_at', 'dt'
] -%}
{%- set extra_columns = extra_payload_columns(source('iot', 'sensor_readings'), known_columns) -%}

with

source as (

    select * from {{ source('iot', 'sensor_readings') }}

),

renamed as (

    select
        cast(device_id as {{ type_text() }}) as device_id,
        cast(reading_epoch as {{ type_double() }}) as reading_epoch,
        cast(reading_at as {{ dbt.type_timestamp() }}) as reading_at,
        cast({{ dbt.date_trunc('hour', 'reading_at') }} as {{ dbt.type_timestamp() }})
            as reading_hour,
        cast(dt as date) as reading_date,
        cast(temperature as {{ type_double() }}) as temperature,
        cast(humidity as {{ type_double() }}) as humidity,
        coalesce(alerts, '') as alerts,
        coalesce(quality_flags, '') as quality_flags,
        cast(sequence_number as {{ type_text() }}) as sequence_number,
        cast(ingested_at as {{ dbt.type_timestamp() }}) as ingested_at,
        cast(written_at as {{ dbt.type_timestamp() }}) as written_at
        {%- for column in extra_columns %},
        {{ adapter.quote(column) }}
        {%- endfor %}
    from source

),

classified as (

    select
        *,
        {%- for code in var('alert_codes') %}
        {{ has_code('alerts', code) }} as {{ code_column('has_alert_', code) }},
        {%- endfor %}
        {%- for code in var('quality_flag_codes') %}
        {{ has_code('quality_flags', code) }} as {{ code_column('has_flag_', code) }},
        {%- endfor %}
        alerts <> '' as has_alert
    from renamed

),

validated as (

    select
        *,
        (
            has_flag_missing_temperature or has_flag_missing_humidity
            or temperature is null or humidity is null
        ) as is_missing_any,
        (has_flag_temperature_out_of_range or has_flag_humidity_out_of_range)
            as is_out_of_range_any,
        -- a measurement counts when present and physically possible; a coerced
        -- numeric string is a correct value and stays valid
        (temperature is not null and not has_flag_temperature_out_of_range)
            as is_temperature_valid,
        (humidity is not null and not has_flag_humidity_out_of_range)
            as is_humidity_valid
    from classified

),

final as (

    select
        *,
        (is_temperature_valid and is_humidity_valid and not is_missing_any) as is_valid
    from validated

)

select * from final
