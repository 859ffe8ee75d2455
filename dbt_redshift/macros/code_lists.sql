{#
    Helpers for the comma-separated code columns (`alerts`, `quality_flags`).
    Membership is tested by wrapping both sides in commas, which is the same
    SQL on Redshift and DuckDB and needs no dialect-specific split or unnest.
#}

{% macro has_code(column, code) -%}
    (',' || coalesce({{ column }}, '') || ',' like '%,{{ code }},%')
{%- endmacro %}

{% macro code_column(prefix, code) -%}
    {{ prefix }}{{ code | lower }}
{%- endmacro %}

{#
    A relation (as a select) listing `codes`, one row each, in column
    `column_name`: the portable stand-in for unnesting a list.
#}
{% macro codes_as_rows(codes, column_name) -%}
    {%- for code in codes %}
    select cast('{{ code }}' as {{ dbt.type_string() }}) as {{ column_name }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
