{#- The statements that bring the refresh policy of a continuous aggregate to config
    `refresh_policy` ({start_offset, end_offset, schedule_interval} | false | none). Pure.
    Community only: add_continuous_aggregate_policy / alter_job (config keys start_offset,
    end_offset) / remove_continuous_aggregate_policy. -#}
{% macro setu_refresh_policy_plan(relation, refresh, caps, state) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- if refresh is not none and refresh is not sameas false and refresh is not mapping -%}
        {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config refresh_policy must be a"
            ~ " mapping {start_offset, end_offset, schedule_interval} or false") }}
    {%- endif -%}
    {%- set offsets = setu_refresh_offsets(relation, refresh) -%}
    {%- set unavailable = setu_unavailable_reason(caps) -%}
    {%- if unavailable -%}
        {{ return({"statements": [], "message":
            "refresh policy skipped: " ~ unavailable if offsets else none}) }}
    {%- endif -%}
    {%- set regclass = setu_regclass(relation) -%}
    {%- set remove_sql = "select remove_continuous_aggregate_policy(continuous_aggregate => "
        ~ regclass ~ ", if_exists => true)" -%}
    {%- if not offsets -%}
        {{ return(setu_policy_plan("refresh policy", false, state["job"], [], [], remove_sql)) }}
    {%- endif -%}
    {%- set start_sql = offsets["start"]["sql"] if offsets["start"] else "null" -%}
    {%- set end_sql = offsets["end"]["sql"] if offsets["end"] else "null" -%}
    {%- set add = [
        "select add_continuous_aggregate_policy(continuous_aggregate => " ~ regclass
            ~ ", start_offset => " ~ start_sql ~ ", end_offset => " ~ end_sql
            ~ ", schedule_interval => " ~ offsets["schedule"]["sql"] ~ ", if_not_exists => true)",
        setu_tag_job_sql(relation, "policy_refresh_continuous_aggregate")] -%}
    {%- set alter = [setu_alter_job_sql(state["job"]["job_id"] if state["job"] else 0,
        offsets["schedule"]["sql"],
        {"start_offset": offsets["start"]["sql"] if offsets["start"] else none,
         "end_offset": offsets["end"]["sql"] if offsets["end"] else none})] -%}
    {{ return(setu_policy_plan("refresh policy", true, state["job"], add, alter, remove_sql,
        "start " ~ (offsets["start"]["text"] if offsets["start"] else "open")
        ~ ", end " ~ (offsets["end"]["text"] if offsets["end"] else "open")
        ~ ", every " ~ offsets["schedule"]["text"])) }}
{% endmacro %}
