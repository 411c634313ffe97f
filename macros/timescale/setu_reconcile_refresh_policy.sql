{#- Reconciles the refresh policy of a continuous aggregate with config `refresh_policy`;
    returns {"message", "job_id"} (job_id: the policy job after reconciling, or none). -#}
{% macro setu_reconcile_refresh_policy(relation, refresh, caps) %}
    {%- set state = {"job": none} -%}
    {%- set offsets = setu_refresh_offsets(relation, refresh) -%}
    {%- if caps["community"] -%}
        {%- set checks = [] -%}
        {%- if offsets -%}
            {%- for key, name in [("start", "start_offset"), ("end", "end_offset")] -%}
                {%- do checks.append({"key": name,
                    "sql": offsets[key]["sql"] if offsets[key] else none,
                    "kind": offsets[key]["kind"] if offsets[key] else "interval"}) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- set state = {"job": setu_policy_job_state(relation,
            "policy_refresh_continuous_aggregate",
            offsets["schedule"]["sql"] if offsets else none, checks)} -%}
    {%- endif -%}
    {%- set plan = setu_refresh_policy_plan(relation, refresh, caps, state) -%}
    {%- do setu_run_statements(plan["statements"]) -%}
    {%- set job = setu_policy_job_state(relation, "policy_refresh_continuous_aggregate")
        if caps["community"] and offsets else none -%}
    {{ return({"message": plan["message"], "job_id": job["job_id"] if job else none}) }}
{% endmacro %}
