{#- time_bucket(width, column) where TimescaleDB is installed (continuous aggregates need
    it), else PostgreSQL's date_bin with time_bucket's default origin (Monday 2000-01-03
    UTC), which gives the same buckets for fixed widths (no months or years). width: an
    interval text such as '1 hour'. -#}
{% macro setu_time_bucket(width, column) %}
    {%- set caps = get_capabilities() -%}
    {%- if caps["timescaledb"] or not execute -%}
        time_bucket(interval {{ sql_literal(width) }}, {{ column }})
    {%- else -%}
        date_bin(interval {{ sql_literal(width) }}, {{ column }}, timestamptz '2000-01-03 00:00:00+00')
    {%- endif -%}
{% endmacro %}
