{#- The statements that bring the retention policy of a hypertable or continuous aggregate
    to config `retention_policy` ({drop_after, schedule_interval} | false | none). Pure.
    Community: add_retention_policy / alter_job / remove_retention_policy. Elsewhere one
    "skipped" message naming what does the job instead (`setu maintain`: drop_chunks on the
    Apache edition, batched deletes on plain PostgreSQL).
    guarded (the Bronze tables): on Community the policy is replaced by the user-defined job
    _etl.guarded_retention_job (macros/etl/create_retention_guard.sql), which never drops a
    chunk holding a row that Silver has not processed; a SETU policy is removed, the job added
    (add_job), altered (alter_job) or deleted (delete_job); state["guarded_job"] is that job
    as {"job_id", "managed", "differs"} or none. A policy SETU did not add is left alone. -#}
{% macro setu_retention_plan(relation, retention, caps, state, guarded=false) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set asked = retention is mapping -%}
    {%- if retention is not none and retention is not sameas false and not asked -%}
        {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config retention_policy must be"
            ~ " a mapping {drop_after, schedule_interval} or false") }}
    {%- endif -%}
    {%- set drop_after = setu_interval(retention.get("drop_after"), label,
        "retention_policy.drop_after") if asked else none -%}
    {%- set schedule = setu_interval(retention.get("schedule_interval"), label,
        "retention_policy.schedule_interval", allow_none=true) if asked else none -%}
    {%- set unavailable = setu_unavailable_reason(caps) -%}
    {%- if unavailable -%}
        {%- set instead = ("`setu maintain` runs drop_chunks" if caps["timescaledb"]
            else "`setu maintain` deletes in batches") ~ " older than "
            ~ (drop_after["text"] if drop_after else "") -%}
        {{ return({"statements": [], "message": "retention policy skipped: " ~ unavailable
            ~ "; " ~ instead if asked else none}) }}
    {%- endif -%}
    {%- if state["target"] is none -%}
        {{ return({"statements": [], "message": "retention policy skipped: not a hypertable"
            ~ " (config time_column_name makes one)" if asked else none}) }}
    {%- endif -%}
    {%- set regclass = setu_regclass(relation) -%}
    {%- set schedule_sql = schedule["sql"] if schedule is not none else none -%}
    {%- if guarded -%}
        {{ return(setu_guarded_retention_plan(regclass, drop_after, schedule_sql, state)) }}
    {%- endif -%}
    {%- if asked -%}
        {%- set add = [
            "select add_retention_policy(relation => " ~ regclass ~ ", drop_after => "
                ~ drop_after["sql"] ~ ", if_not_exists => true"
                ~ (", schedule_interval => " ~ schedule_sql if schedule_sql else "") ~ ")",
            setu_tag_job_sql(relation, "policy_retention")] -%}
        {%- set alter = [setu_alter_job_sql(state["job"]["job_id"] if state["job"] else 0,
            schedule_sql, {"drop_after": drop_after["sql"]})] -%}
    {%- else -%}
        {%- set add, alter = [], [] -%}
    {%- endif -%}
    {{ return(setu_policy_plan("retention policy", asked, state["job"], add, alter,
        "select remove_retention_policy(relation => " ~ regclass ~ ", if_exists => true)",
        "drop after " ~ drop_after["text"] if asked else "")) }}
{% endmacro %}

{#- The guarded job's part of setu_retention_plan (Community, guarded): pure. Calls with
    named arguments as documented (add_job, alter_job, delete_job, remove_retention_policy). -#}
{% macro setu_guarded_retention_plan(regclass, drop_after, schedule_sql, state) %}
    {%- set policy, job = state.get("job"), state.get("guarded_job") -%}
    {%- if policy is not none and not policy["managed"] -%}
        {{ return({"statements": [], "message": "retention policy left alone: job "
            ~ policy["job_id"] ~ " was not created by SETU (it drops chunks without checking"
            ~ " that Silver has processed their rows)"}) }}
    {%- endif -%}
    {%- set statements = [] -%}
    {%- if policy is not none -%}
        {%- do statements.append("select remove_retention_policy(relation => " ~ regclass
            ~ ", if_exists => true)") -%}
    {%- endif -%}
    {%- if drop_after is none -%}
        {%- if job is not none -%}
            {%- do statements.append("select delete_job(job_id => " ~ (job["job_id"] | int) ~ ")") -%}
            {{ return({"statements": statements, "message": "guarded retention job removed (job "
                ~ job["job_id"] ~ "): no longer configured"}) }}
        {%- endif -%}
        {{ return({"statements": statements, "message": "retention policy removed (job "
            ~ policy["job_id"] ~ "): no longer configured" if policy is not none else none}) }}
    {%- endif -%}
    {%- set arguments = "schedule_interval => " ~ (schedule_sql or "interval '1 day'")
        ~ ", config => jsonb_build_object('relation', " ~ regclass ~ "::text, 'drop_after', "
        ~ sql_literal(drop_after["text"]) ~ ", 'setu_managed', true))" -%}
    {%- set detail = " (drop after " ~ drop_after["text"]
        ~ "; chunks with rows not processed yet are kept)" -%}
    {%- if job is none -%}
        {%- do statements.append("select add_job(proc => '_etl.guarded_retention_job'::regproc, "
            ~ arguments) -%}
        {%- set message = ("retention policy replaced by the guarded job" if policy is not none
            else "guarded retention job added") ~ detail -%}
    {%- elif job["differs"] -%}
        {%- do statements.append("select alter_job(job_id => " ~ (job["job_id"] | int) ~ ", "
            ~ arguments) -%}
        {%- set message = "guarded retention job updated" ~ detail ~ ", job " ~ job["job_id"]
            ~ " kept" -%}
    {%- else -%}
        {%- set message = ("retention policy replaced by the guarded job" if policy is not none
            else "guarded retention job unchanged") ~ detail -%}
    {%- endif -%}
    {{ return({"statements": statements, "message": message}) }}
{% endmacro %}
