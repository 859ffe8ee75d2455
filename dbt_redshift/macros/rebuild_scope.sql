{#
    What an incremental run rebuilds. The batch pipeline passes the reading hours
    and days its warehouse loads changed in the environment of the dbt process,
    as JSON lists: DBT_REBUILD_HOURS ('YYYY-MM-DD HH:MM:SS') and
    DBT_REBUILD_DAYS ('YYYY-MM-DD'). An incremental model deletes those hours (or
    days) and inserts them recomputed, so late readings correct their hour and
    day and nothing is counted twice. Unset (a `dbt build` by hand) means
    everything: slower, never wrong.

    Environment variables rather than --vars: a changed var makes dbt parse the
    whole project again on every run, a changed environment variable only the
    few files that read it.
#}
{% macro in_rebuild_scope(column, unit) -%}
    {%- set raw = env_var('DBT_REBUILD_' ~ (unit | upper), '') -%}
    {%- set values = none if raw == '' else fromjson(raw) -%}
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
