{#- Reconciles the retention policy of a relation with config `retention_policy`; returns
    the log message. -#}
{% macro setu_reconcile_retention(relation, retention, caps) %}
    {%- set state = {"target": none, "job": none} -%}
    {%- if caps["community"] -%}
        {%- set label = setu_relation_label(relation) -%}
        {%- set asked = retention is mapping -%}
        {%- set drop_after = setu_interval(retention.get("drop_after"), label,
            "retention_policy.drop_after") if asked else none -%}
        {%- set schedule = setu_interval(retention.get("schedule_interval"), label,
            "retention_policy.schedule_interval", allow_none=true) if asked else none -%}
        {%- set state = {
            "target": setu_timescale_target(relation),
            "job": setu_policy_job_state(relation, "policy_retention",
                schedule["sql"] if schedule is not none else none,
                [{"key": "drop_after", "sql": drop_after["sql"], "kind": drop_after["kind"]}]
                if asked else []),
        } -%}
    {%- endif -%}
    {%- set plan = setu_retention_plan(relation, retention, caps, state) -%}
    {%- do setu_run_statements(plan["statements"]) -%}
    {{ return(plan["message"]) }}
{% endmacro %}
