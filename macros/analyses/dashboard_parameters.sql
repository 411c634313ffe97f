{#- The dashboard analyses' parameters as select columns: the site-local day (dashboard_day,
    else the latest day in `latest_day_from`, a CTE or relation with a local_date column), the
    machine (dashboard_machine_id; null means every machine) and, with_history_days, how many
    days up to that day a history panel covers (history_days, default 7). -#}
{% macro dashboard_parameters(latest_day_from, with_history_days=false) -%}
    coalesce(
        {{ dashboard_parameter('dashboard_day') }}::date,
        (select max(days.local_date) as latest_day from {{ latest_day_from }} as days)
    ) as local_date,
    {{ dashboard_parameter('dashboard_machine_id') }}::bigint as machine_id
    {%- if with_history_days %},
    coalesce({{ dashboard_parameter('history_days') }}::int, 7) as history_days
    {%- endif %}
{%- endmacro %}

{#- One parameter: the var's value as a literal, or, compiled with var
    dashboard_bind_parameters (as `setu report` does), a named bind parameter of the same
    name, so the compiled SQL runs for any day and machine without compiling again. -#}
{% macro dashboard_parameter(name) -%}
    {%- if var('dashboard_bind_parameters', false) -%}
        %({{ name }})s
    {%- else -%}
        {{ sql_literal(var(name, none)) }}
    {%- endif -%}
{%- endmacro %}
