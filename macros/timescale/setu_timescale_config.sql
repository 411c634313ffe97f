{#- The model's TimescaleDB config keys (flat, as in dbt-timescaledb), read from `config`.
    A key that is absent is none; an explicit false stays false (false means "off": the
    reconcile macros then remove what SETU had set up). -#}
{% macro setu_timescale_config() %}
    {%- set keys = [
        "time_column_name", "chunk_time_interval", "create_default_indexes", "dimensions",
        "integer_now_func", "integer_now_func_sql", "indexes", "compression",
        "retention_policy", "reorder_policy", "refresh_policy", "materialized_only",
        "create_group_indexes", "create_with_data",
    ] -%}
    {%- set settings = {} -%}
    {%- for key in keys -%}
        {%- do settings.update({key: config.get(key)}) -%}
    {%- endfor -%}
    {{ return(settings) }}
{% endmacro %}
