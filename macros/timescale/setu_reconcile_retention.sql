{#- Reconciles the retention policy of a relation with config `retention_policy`; returns
    the log message. guarded: the Bronze tables, whose retention on Community is the guarded
    job (see setu_retention_plan). -#}
{% macro setu_reconcile_retention(relation, retention, caps, guarded=false) %}
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
            "guarded_job": setu_guarded_retention_job_state(relation, schedule, drop_after)
                if guarded else none,
        } -%}
    {%- endif -%}
    {%- set plan = setu_retention_plan(relation, retention, caps, state, guarded) -%}
    {%- do setu_run_statements(plan["statements"]) -%}
    {{ return(plan["message"]) }}
{% endmacro %}

{#- The guarded retention job of a relation ({"job_id", "managed", "differs"}) or none;
    differs: its schedule (default 1 day) or drop_after is not what is asked. -#}
{% macro setu_guarded_retention_job_state(relation, schedule, drop_after) %}
    {%- set query -%}
        select
            j.job_id,
            coalesce(j.config ->> 'setu_managed', 'false') = 'true' as managed,
            (
                j.schedule_interval is distinct from
                {{ schedule["sql"] if schedule is not none else "interval '1 day'" }}
                or (j.config ->> 'drop_after') is distinct from
                {{ sql_literal(drop_after["text"]) if drop_after is not none else "null" }}
            ) as differs
        from timescaledb_information.jobs as j
        where j.proc_schema = '_etl' and j.proc_name = 'guarded_retention_job'
            and j.config ->> 'relation' = {{ setu_regclass(relation) }}::text
        order by j.job_id
        limit 1
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}{{ return(none) }}{%- endif -%}
    {{ return({"job_id": rows[0]["job_id"], "managed": rows[0]["managed"],
               "differs": rows[0]["differs"]}) }}
{% endmacro %}
