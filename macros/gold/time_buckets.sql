{#- UTC-aligned bucket start (contract: sub-day buckets are UTC-aligned time_bucket buckets).
    Without TimescaleDB, date_bin from the same origin gives the same buckets for widths that
    divide a day. -#}
{% macro utc_bucket(width, column) -%}
    {%- if get_capabilities()["timescaledb"] -%}
        time_bucket(interval {{ sql_literal(width) }}, {{ column }})
    {%- else -%}
        date_bin(interval {{ sql_literal(width) }}, {{ column }}, timestamptz '2000-01-01 00:00:00+00')
    {%- endif -%}
{%- endmacro %}

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
