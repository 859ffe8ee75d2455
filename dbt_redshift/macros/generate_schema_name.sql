{#
    Custom schema names are used as they are (`staging`, `analytics`), not
    prefixed with the target schema, so analysts find the same schemas on
    Redshift and in the local DuckDB file.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
