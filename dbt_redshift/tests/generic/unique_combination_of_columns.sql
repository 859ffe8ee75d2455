{#
    Fails with one row per combination of `combination_of_columns` that occurs
    more than once: the composite-key uniqueness test, without dbt_utils.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

),

final as (

    select * from grouped
    where occurrences > 1

)

select * from final

{% endtest %}
