{#- The model's TimescaleDB config keys (flat, as in dbt-timescaledb), read from `config`;
    Silver facts default their compression (setu_silver_compression).
    A key that is absent is none; an explicit false stays false (false means "off": the
    reconcile macros then remove what SETU had set up). -#}
{% macro setu_timescale_config() %}
    {%- set settings = {} -%}
    {%- for key in setu_timescale_config_keys() -%}
        {%- do settings.update({key: config.get(key)}) -%}
    {%- endfor -%}
    {#- A Silver fact without a `compression` key compresses after setu_silver_compress_after
        (explicit false still means off). -#}
    {%- set fqn = model.get("fqn", []) if model is mapping else [] -%}
    {%- if settings["compression"] is none and fqn[1:2] == ["silver"]
        and settings["time_column_name"] -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute="name") | list
            if execute else [] -%}
        {%- do settings.update({"compression": setu_silver_compression(
            settings["time_column_name"], columns)}) -%}
    {%- endif -%}
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
