{#
    An 8-byte float on every warehouse. `dbt.type_float()` is `float`, which
    DuckDB reads as 4 bytes: epoch seconds would lose their last digits.
#}
{% macro type_double() -%}
    double precision
{%- endmacro %}
