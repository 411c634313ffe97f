{#- The site-local date of an instant. -#}
{% macro local_date(column, timezone) -%}
    (({{ column }}) at time zone {{ timezone }})::date
{%- endmacro %}

{#- The instants where a site-local day starts and ends (23 or 25 hours apart on
    daylight-saving days). -#}
{% macro local_day_start(local_date, timezone) -%}
    ({{ local_date }}::timestamp at time zone {{ timezone }})
{%- endmacro %}

{% macro local_day_end(local_date, timezone) -%}
    (({{ local_date }} + 1)::timestamp at time zone {{ timezone }})
{%- endmacro %}
