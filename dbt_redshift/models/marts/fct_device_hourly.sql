{#
    Per device and hour: reading counts, measurement statistics from valid
    values only, alert counts by code, missing and out-of-range counts.

    Incremental: a run rebuilds exactly the reading hours its loads changed
    (DBT_REBUILD_HOURS, from the batch pipeline): those hours are deleted and
    recomputed from every reading they hold, so a late or updated reading
    corrects its own hour however old the hour is, and nothing is counted twice.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rebuild_scope('reading_hour', 'hours') }}",
        sort=['reading_hour', 'device_id'],
        dist='device_id',
    )
}}

with

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}
    {%- if is_incremental() %}
    where {{ in_rebuild_scope('reading_date', 'days') }}
        and {{ in_rebuild_scope('reading_hour', 'hours') }}
    {%- endif %}

),

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
    from readings
    group by device_id, reading_hour

),

final as (

    select * from aggregated

)

select * from final
