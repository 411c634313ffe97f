{#- The statements that bring the retention policy of a hypertable or continuous aggregate
    to config `retention_policy` ({drop_after, schedule_interval} | false | none). Pure.
    Community: add_retention_policy / alter_job / remove_retention_policy. Elsewhere one
    "skipped" message naming what does the job instead (`setu maintain`: drop_chunks on the
    Apache edition, batched deletes on plain PostgreSQL). -#}
{% macro setu_retention_plan(relation, retention, caps, state) %}
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
