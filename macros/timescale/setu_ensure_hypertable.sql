{#- Makes `relation` the hypertable its model config asks for (config time_column_name; see
    docs/timescaledb-config.md), or confirms it, and reports in ONE log line.
    - not yet a hypertable: create_hypertable (migrate_data when the table holds rows);
    - already one: chunk_time_interval and space dimensions reconciled against
      timescaledb_information.dimensions (set_chunk_time_interval only when different,
      missing dimensions added); existing chunks keep their ranges;
    - plain PostgreSQL: no-op and one line (docs/timescaledb-config.md says how to
      partition a table yourself).
    Call it from the incremental materialization right after the table is created (first
    build, --full-refresh) and on every run. Safe as a hook: returns "".
    settings / caps: for tests and Bronze; default to the model config and the server. -#}
{% macro setu_ensure_hypertable(relation, settings=none, caps=none) %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set settings = settings if settings is not none else setu_timescale_config() -%}
    {%- if not settings.get("time_column_name") -%}{{ return("") }}{%- endif -%}
    {%- set caps = caps if caps is not none else get_capabilities() -%}
    {%- do setu_log(relation, setu_apply_hypertable(relation, settings, caps)) -%}
    {{ return("") }}
{% endmacro %}
