{#
    Columns of `relation` beyond `known`: the extra payload fields devices send
    (such as `pressure`), which the loader adds to the raw table as they first
    appear. Staging passes them through so analysts see them without a code
    change. Empty at parse time and when the relation cannot be inspected.
#}
{% macro extra_payload_columns(relation, known) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set known_lower = known | map('lower') | list -%}
    {%- set extras = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in known_lower -%}
            {%- do extras.append(column.name | lower) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(extras) }}
{%- endmacro %}
