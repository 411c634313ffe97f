{#- Makes a freshly created model table a hypertable on its time column, through the
    lifecycle macro setu_ensure_hypertable (macros/timescale) when present, so one macro owns
    chunk intervals, space dimensions and their reconciliation. -#}
{% macro ensure_target_hypertable(relation, time_column) %}
    {%- set lifecycle = context.get("setu_ensure_hypertable") -%}
    {%- if lifecycle is not none -%}
        {{ lifecycle(relation) }}
    {%- elif get_capabilities()["timescaledb"] -%}
        {% call statement("create_hypertable") -%}
            select create_hypertable(
                relation => {{ sql_literal(relation | string) }}::regclass,
                dimension => by_range({{ sql_literal(time_column) }}),
                create_default_indexes => false,
                migrate_data => true
            )
        {%- endcall %}
    {%- endif -%}
{% endmacro %}
