{#
    Per device and hour: reading counts, measurement statistics from valid
    values only, alert counts by code, missing and out-of-range counts.

    Incremental by delete+insert on (device_id, reading_hour), which dbt runs
    the same way on Redshift and DuckDB. An incremental run recomputes every
    hour that received a reading loaded after the table's newest load minus
    `hourly_lookback_hours`, so a late or re-delivered reading corrects its
    own hour however old the hour is.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['device_id', 'reading_hour'],
        on_schema_change='append_new_columns',
        sort=['reading_hour', 'device_id'],
        dist='device_id',
    )
}}

with

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}

),

{% if is_incremental() %}
changed_hours as (

    select distinct device_id, reading_hour
    from readings
    where ingested_at > (
        select {{ dbt.dateadd('hour', -1 * var('hourly_lookback_hours'), 'max(last_ingested_at)') }}
        from {{ this }}
    )

),

scoped as (

    select readings.*
    from readings
    inner join changed_hours
        on readings.device_id = changed_hours.device_id
        and readings.reading_hour = changed_hours.reading_hour

),
{% else %}
scoped as (

    select * from readings

),
{% endif %}

aggregated as (

    select
        device_id,
        reading_hour,
        min(reading_date) as reading_date,
        count(*) as reading_count,
        count(case when is_valid then 1 end) as valid_reading_count,
        min(case when is_temperature_valid then temperature end) as min_temperature,
        avg(case when is_temperature_valid then temperature end) as avg_temperature,
        max(case when is_temperature_valid then temperature end) as max_temperature,
        min(case when is_humidity_valid then humidity end) as min_humidity,
        avg(case when is_humidity_valid then humidity end) as avg_humidity,
        max(case when is_humidity_valid then humidity end) as max_humidity,
        {%- for code in var('alert_codes') %}
        count(case when {{ code_column('has_alert_', code) }} then 1 end)
            as {{ code | lower }}_alert_count,
        {%- endfor %}
        count(case when has_alert then 1 end) as alerting_reading_count,
        count(case when has_flag_missing_temperature or temperature is null then 1 end)
            as missing_temperature_count,
        count(case when has_flag_missing_humidity or humidity is null then 1 end)
            as missing_humidity_count,
        count(case when is_missing_any then 1 end) as missing_reading_count,
        count(case when has_flag_temperature_out_of_range then 1 end)
            as temperature_out_of_range_count,
        count(case when has_flag_humidity_out_of_range then 1 end)
            as humidity_out_of_range_count,
        count(case when is_out_of_range_any then 1 end) as out_of_range_reading_count,
        max(ingested_at) as last_ingested_at
    from scoped
    group by device_id, reading_hour

),

final as (

    select * from aggregated

)

select * from final
