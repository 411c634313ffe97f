{#- Reconciles the reorder policy of a hypertable with config `reorder_policy`; returns the
    log message. -#}
{% macro setu_reconcile_reorder(relation, reorder, caps) %}
    {%- set state = {"target": none, "job": none, "index": {}} -%}
    {%- if caps["community"] -%}
        {%- set asked = reorder is mapping -%}
        {%- set index = setu_reorder_index(relation, reorder) if asked else {} -%}
        {%- set schedule = setu_interval(reorder.get("schedule_interval"),
            setu_relation_label(relation), "reorder_policy.schedule_interval",
            allow_none=true) if asked else none -%}
        {%- set state = {
            "target": setu_timescale_target(relation),
            "index": index,
            "job": setu_policy_job_state(relation, "policy_reorder",
                schedule["sql"] if schedule is not none else none,
                [{"key": "index_name", "sql": sql_literal(index["name"]), "kind": "text"}]
                if asked else []),
        } -%}
    {%- endif -%}
    {%- set plan = setu_reorder_plan(relation, reorder, caps, state) -%}
    {%- do setu_run_statements(plan["statements"]) -%}
    {{ return(plan["message"]) }}
{% endmacro %}
