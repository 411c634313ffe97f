{#- The chunk interval for a Bronze table, so that one chunk of the table plus its indexes
    fits the memory budget (default 25% of RAM) at the expected ingest rate:
    budget / (rows per second x bytes per row), rounded down to the nearest step of a
    readable ladder (1 hour .. 7 days). Returns seconds. -#}
{% macro chunk_time_interval_seconds(table_name, spec) %}
    {%- set budget = var("setu_memory_budget_bytes") | float -%}
    {%- set rates = var("setu_ingest_rows_per_second", {}) -%}
    {%- set rate = rates.get(table_name, spec["rows_per_second"]) | float -%}
    {%- if budget <= 0 or rate <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "vars setu_memory_budget_bytes and setu_ingest_rows_per_second must be positive; got "
            ~ budget ~ " and " ~ rate ~ " for " ~ table_name) }}
    {%- endif -%}
    {%- set fitting = budget / (rate * spec["row_bytes"]) -%}
    {%- set hour = 3600 -%}
    {%- set ladder = [1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 168] -%}
    {%- set steps = ladder | select("le", fitting / hour) | list -%}
    {{ return((steps | last if steps else 1) * hour) }}
{% endmacro %}
