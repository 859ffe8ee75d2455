{#
    What an incremental run rebuilds. The batch pipeline passes the reading hours
    and days its warehouse loads changed as vars `rebuild_hours`
    ('YYYY-MM-DD HH:MM:SS') and `rebuild_days` ('YYYY-MM-DD'); an incremental
    model deletes those hours (or days) and inserts them recomputed, so late
    readings correct their hour and day and nothing is counted twice. Without the
    vars (a `dbt build` by hand) everything is in scope: slower, never wrong.
#}
{% macro in_rebuild_scope(column, unit) -%}
    {%- set values = var('rebuild_' ~ unit, none) -%}
    {%- if values is none -%}
        (1 = 1)
    {%- elif values | length == 0 -%}
        (1 = 0)
    {%- else -%}
        {%- set type = dbt.type_timestamp() if unit == 'hours' else 'date' -%}
        ({{ column }} in (
        {%- for value in values -%}
            cast('{{ value }}' as {{ type }}){{ ", " if not loop.last }}
        {%- endfor -%}
        ))
    {%- endif -%}
{%- endmacro %}

{#
    The pre-hook of an incremental model: remove the rows it is about to rebuild.
    Nothing on a first build or a full refresh, which build everything.
#}
{% macro delete_rebuild_scope(column, unit) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ in_rebuild_scope(column, unit) }}
    {%- endif -%}
{%- endmacro %}
