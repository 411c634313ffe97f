{#- Reconciles compression (settings and policy) for a relation with config `compression`;
    returns the log message (the caller prints one line per relation). -#}
{% macro setu_reconcile_compression(relation, compression, caps) %}
    {%- if caps["community"] -%}
        {%- set checks = setu_compression_checks(relation, compression) -%}
        {%- set state = setu_compression_state(relation, checks["schedule_sql"], checks["checks"]) -%}
    {%- else -%}
        {%- set state = {"target": none, "enabled": false, "job": none, "compressed_chunks": 0} -%}
    {%- endif -%}
    {%- set plan = setu_compression_plan(relation, compression, caps, state) -%}
    {%- do setu_run_statements(plan["statements"]) -%}
    {{ return(plan["message"]) }}
{% endmacro %}
