{#
    An 8-byte float on every warehouse. `dbt.type_float()` is `float`, which
    DuckDB reads as 4 bytes: epoch seconds would lose their last digits.
#}
{% macro type_double() -%}
    double precision
{%- endmacro %}

{#
    A string that holds whatever the raw tables hold. Redshift's plain
    `varchar` is 256 bytes, too short for payloads and details; the raw
    columns are varchar(65535) there (pipeline_platform/warehouse_schema.py).
#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text')()) }}
{%- endmacro %}

{% macro default__type_text() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}

{% macro redshift__type_text() -%}
    {{ return('varchar(65535)') }}
{%- endmacro %}
