{#
    For a comma-separated code column: fails with every row holding a code
    outside `values`. Each known code is removed (twice, because `replace`
    does not see overlapping matches such as ",A,A,"); a clean value leaves
    only the delimiters. Empty strings and nulls pass.
#}
{% test codes_in(model, column_name, values) %}

{#- a namespace, because a plain `set` inside a loop does not outlive it -#}
{%- set expr = namespace(remainder="',' || " ~ column_name ~ " || ','") -%}
{%- for value in values -%}
    {%- for _ in range(2) -%}
        {%- set expr.remainder = "replace(" ~ expr.remainder ~ ", '," ~ value ~ ",', ',')" -%}
    {%- endfor -%}
{%- endfor %}

with checked as (

    select
        {{ column_name }} as codes,
        {{ expr.remainder }} as unknown_codes
    from {{ model }}
    where coalesce({{ column_name }}, '') <> ''

),

final as (

    select * from checked
    where unknown_codes <> ','

)

select * from final

{% endtest %}
