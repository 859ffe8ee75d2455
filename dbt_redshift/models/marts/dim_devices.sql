{#
    One row per device that has stored a reading: first and last seen, counts,
    its latest values and a health status.

    Health is judged at a reference time `as_of`:
      - var `as_of` unset (default): the latest reading time in the data, so a
        build over the same data always gives the same answer;
      - `as_of: now`: the warehouse's current time (use in scheduled runs so
        a fleet that stops sending turns stale);
      - any timestamp literal: that time.
    Rules, first match wins:
      - `stale`: no reading in the `stale_after_hours` before as_of;
      - `faulty`: of its readings in the `health_window_hours` before as_of,
        the share that is not valid (missing or out-of-range values, see
        stg_iot__sensor_readings.is_valid) is above `faulty_flag_share`;
      - `ok`: otherwise.
#}
{{
    config(
        sort=['device_id'],
        dist='all',
    )
}}

with

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}

),

reference_time as (

    -- exactly one row, whichever way as_of is chosen
    select
        {%- if var('as_of') is none %}
        max(reading_at) as as_of
        {%- elif var('as_of') == 'now' %}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }}) as as_of
        {%- else %}
        cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }}) as as_of
        {%- endif %}
    from (select max(reading_at) as reading_at from readings) as latest_reading

),

ordered as (

    select
        readings.*,
        row_number() over (
            partition by device_id
            order by reading_at desc, reading_epoch desc
        ) as recency_rank
    from readings

),

latest as (

    select * from ordered
    where recency_rank = 1

),

lifetime as (

    select
        device_id,
        min(reading_at) as first_seen_at,
        max(reading_at) as last_seen_at,
        count(*) as reading_count
    from readings
    group by device_id

),

recent as (

    select
        readings.device_id,
        count(*) as recent_reading_count,
        count(case when not readings.is_valid then 1 end) as recent_invalid_reading_count
    from readings
    cross join reference_time
    where readings.reading_at > {{ dbt.dateadd('hour', -1 * var('health_window_hours'), 'reference_time.as_of') }}
        and readings.reading_at <= reference_time.as_of
    group by readings.device_id

),

joined as (

    select
        lifetime.device_id,
        lifetime.first_seen_at,
        lifetime.last_seen_at,
        lifetime.reading_count,
        latest.temperature as latest_temperature,
        latest.humidity as latest_humidity,
        latest.alerts as latest_alerts,
        latest.quality_flags as latest_quality_flags,
        coalesce(recent.recent_reading_count, 0) as recent_reading_count,
        coalesce(recent.recent_invalid_reading_count, 0) as recent_invalid_reading_count,
        case
            when coalesce(recent.recent_reading_count, 0) = 0 then null
            else cast(recent.recent_invalid_reading_count as {{ type_double() }})
                / recent.recent_reading_count
        end as recent_invalid_share,
        reference_time.as_of,
        lifetime.last_seen_at
            <= {{ dbt.dateadd('hour', -1 * var('stale_after_hours'), 'reference_time.as_of') }}
            as is_stale
    from lifetime
    inner join latest
        on lifetime.device_id = latest.device_id
    cross join reference_time
    left join recent
        on lifetime.device_id = recent.device_id

),

final as (

    select
        device_id,
        first_seen_at,
        last_seen_at,
        reading_count,
        latest_temperature,
        latest_humidity,
        latest_alerts,
        latest_quality_flags,
        recent_reading_count,
        recent_invalid_reading_count,
        recent_invalid_share,
        as_of,
        case
            when is_stale then 'stale'
            when recent_invalid_share > {{ var('faulty_flag_share') }} then 'faulty'
            else 'ok'
        end as health_status
    from joined

)

select * from final
