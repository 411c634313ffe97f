{#- The statements that bring the reorder policy of a hypertable to config `reorder_policy`
    ({index, create_index, schedule_interval} | false | none). Pure: state carries
    "target", "job" and "index" (from setu_reorder_index). Community edition only:
    add_reorder_policy(hypertable, index_name, if_not_exists) takes no schedule, so the
    tagging alter_job sets schedule_interval. -#}
{% macro setu_reorder_plan(relation, reorder, caps, state) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set asked = reorder is mapping -%}
    {%- if reorder is not none and reorder is not sameas false and not asked -%}
        {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config reorder_policy must be"
            ~ " a mapping {index, create_index, schedule_interval} or false") }}
    {%- endif -%}
    {%- set unavailable = setu_unavailable_reason(caps) -%}
    {%- if unavailable -%}
        {{ return({"statements": [], "message":
            "reorder policy skipped: " ~ unavailable if asked else none}) }}
    {%- endif -%}
    {%- if state["target"] != "hypertable" and asked -%}
        {{ return({"statements": [], "message": "reorder policy skipped: "
            ~ ("a continuous aggregate cannot have one" if state["target"] == "cagg"
               else "not a hypertable (config time_column_name makes one)")}) }}
    {%- endif -%}
    {%- set regclass = setu_regclass(relation) -%}
    {%- set remove_sql = "select remove_reorder_policy(hypertable => " ~ regclass
        ~ ", if_exists => true)" -%}
    {%- if not asked -%}
        {{ return(setu_policy_plan("reorder policy", false, state["job"], [], [], remove_sql)) }}
    {%- endif -%}
    {%- set index = state["index"] -%}
    {%- if index.get("missing") and index["create_sql"] is none -%}
        {{ return({"statements": [], "message": "reorder policy skipped: no index on ("
            ~ index["columns"] | join(", ") ~ ") and create_index is false"}) }}
    {%- endif -%}
    {%- set schedule = setu_interval(reorder.get("schedule_interval"), label,
        "reorder_policy.schedule_interval", allow_none=true) -%}
    {%- set schedule_sql = schedule["sql"] if schedule is not none else none -%}
    {%- set prepare = [index["create_sql"]] if index.get("missing") else [] -%}
    {%- set add = prepare + [
        "select add_reorder_policy(hypertable => " ~ regclass ~ ", index_name => "
            ~ sql_literal(index["name"]) ~ ", if_not_exists => true)",
        setu_tag_job_sql(relation, "policy_reorder", schedule_sql)] -%}
    {%- set alter = prepare + [setu_alter_job_sql(state["job"]["job_id"] if state["job"] else 0,
        schedule_sql, {"index_name": sql_literal(index["name"]) ~ "::text"})] -%}
    {{ return(setu_policy_plan("reorder policy", true, state["job"], add, alter, remove_sql,
        "index " ~ index["name"] ~ (", index created" if index.get("missing") else ""))) }}
{% endmacro %}
