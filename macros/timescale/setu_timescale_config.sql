{#- The model's TimescaleDB config keys (flat, as in dbt-timescaledb), read from `config`.
    A key that is absent is none; an explicit false stays false (false means "off": the
    reconcile macros then remove what SETU had set up). -#}
{% macro setu_timescale_config() %}
    {%- set settings = {} -%}
    {%- for key in setu_timescale_config_keys() -%}
        {%- do settings.update({key: config.get(key)}) -%}
    {%- endfor -%}
    {{ return(settings) }}
{% endmacro %}

{#- Every lifecycle key SETU reads (docs/timescaledb-config.md); validate_model_config
    rejects a model config key that is neither dbt's, a SETU materialization's nor one of
    these. -#}
{% macro setu_timescale_config_keys() %}
    {{ return([
        "time_column_name", "chunk_time_interval", "create_default_indexes", "dimensions",
        "integer_now_func", "integer_now_func_sql", "indexes", "compression",
        "retention_policy", "reorder_policy", "refresh_policy", "materialized_only",
        "create_group_indexes", "create_with_data",
    ]) }}
{% endmacro %}
