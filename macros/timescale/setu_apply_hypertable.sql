{#- The work of setu_ensure_hypertable without the log line: applies the hypertable plan to
    `relation` and returns the message ("hypertable created on time (...)", "hypertable
    unchanged ...", "hypertable skipped: ..."), or none when time_column_name is not set. -#}
{% macro setu_apply_hypertable(relation, settings, caps) %}
    {%- set time_column = settings.get("time_column_name") -%}
    {%- if not time_column -%}{{ return(none) }}{%- endif -%}
    {%- set label = setu_relation_label(relation) -%}
    {%- if not caps["timescaledb"] -%}
        {%- do setu_interval(settings.get("chunk_time_interval"), label, "chunk_time_interval",
                             allow_none=true) -%}
        {{ return("hypertable skipped: TimescaleDB is not installed in this database;"
            ~ " kept a plain table") }}
    {%- endif -%}
    {%- set state = setu_hypertable_state(relation, time_column) -%}
    {%- if not state["relation_exists"] or state["is_cagg"] -%}
        {{ return("hypertable skipped: "
            ~ ("a continuous aggregate is already backed by one" if state["is_cagg"]
               else "the relation does not exist yet")) }}
    {%- endif -%}
    {%- if state["time_column_type"] is none -%}
        {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config time_column_name = "
            ~ (time_column | tojson) ~ " is not a column of the relation") }}
    {%- endif -%}
    {%- set plan = setu_hypertable_plan(relation, settings, state) -%}
    {%- set done = [] -%}
    {%- for step in plan["steps"] -%}
        {%- set count = setu_run_statements([step["sql"]])[0] -%}
        {%- if step["action"] and (count > 0 or not step["conditional"]) -%}
            {%- do done.append(step["action"]) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not done -%}
        {%- set primary = state["dimensions"][0] if state["dimensions"] else {} -%}
        {%- do done.append("unchanged on " ~ primary.get("column_name", time_column)
            ~ " (chunk interval " ~ (primary.get("time_interval")
                                     or primary.get("integer_interval")) ~ ")") -%}
    {%- endif -%}
    {{ return("hypertable " ~ (done + plan["notes"]) | join("; ")) }}
{% endmacro %}
