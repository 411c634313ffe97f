{#- The dashboard analyses' parameters as select columns: the site-local day (var
    dashboard_day, else the latest day in `latest_day_from`, a CTE or relation with a
    local_date column) and the machine (var dashboard_machine_id; null means every machine). -#}
{% macro dashboard_parameters(latest_day_from) -%}
    coalesce(
        {{ sql_literal(var('dashboard_day', none)) }}::date,
        (select max(days.local_date) as latest_day from {{ latest_day_from }} as days)
    ) as local_date,
    {{ sql_literal(var('dashboard_machine_id', none)) }}::bigint as machine_id
{%- endmacro %}
