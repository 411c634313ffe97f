{#- Makes `relation` the hypertable its model config asks for (config time_column_name; see
    docs/timescaledb-config.md), or confirms it, and reports in one log line.
    - not yet a hypertable: create_hypertable (migrate_data when the table holds rows);
    - already one: chunk_time_interval and space dimensions reconciled against
      timescaledb_information.dimensions (set_chunk_time_interval only when different;
      missing dimensions added); existing chunks keep their ranges.
    - plain PostgreSQL: no-op and one line (pg_partman, when installed, needs a table created
      partitioned, which a dbt model's table is not: see the docs).
    Called by the incremental materialization after it creates the table and on every run.
    settings / caps: for tests and for Bronze; default to the model config and the server. -#}
{% macro setu_ensure_hypertable(relation, settings=none, caps=none) %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set settings = settings if settings is not none else setu_timescale_config() -%}
    {%- set time_column = settings.get("time_column_name") -%}
    {%- if not time_column -%}{{ return("") }}{%- endif -%}
    {%- set caps = caps if caps is not none else get_capabilities() -%}
    {%- if not caps["timescaledb"] -%}
        {%- set interval = setu_interval(settings.get("chunk_time_interval"),
            setu_relation_label(relation), "chunk_time_interval", allow_none=true) -%}
        {%- set partman = "; pg_partman is installed, but native partitioning needs the table"
            ~ " created partitioned by range (" ~ time_column ~ "), which dbt's table is not"
            ~ " (see docs/timescaledb-config.md, plain PostgreSQL)" if caps["pg_partman"]
            else "" -%}
        {%- do setu_log(relation, "hypertable skipped: TimescaleDB is not installed in this"
            ~ " database; kept a plain table" ~ partman) -%}
        {{ return("") }}
    {%- endif -%}
    {%- set state = setu_hypertable_state(relation, time_column) -%}
    {%- if not state["relation_exists"] or state["is_cagg"] -%}
        {%- do setu_log(relation, "hypertable skipped: "
            ~ ("a continuous aggregate is already backed by one" if state["is_cagg"]
               else "the relation does not exist yet")) -%}
        {{ return("") }}
    {%- endif -%}
    {%- if state["time_column_type"] is none -%}
        {{ exceptions.raise_compiler_error("setu: " ~ setu_relation_label(relation)
            ~ ": config time_column_name = " ~ (time_column | tojson)
            ~ " is not a column of the relation") }}
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
    {%- do setu_log(relation, "hypertable " ~ (done + plan["notes"]) | join("; ")) -%}
    {{ return("") }}
{% endmacro %}
