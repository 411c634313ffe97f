{#- Dry run: what a lifecycle macro would issue on a given server, without running it.
    dbt run-operation setu_render_lifecycle_plan --args '{kind: compression, schema: silver,
      identifier: fct_telemetry, settings: {compression: {after: 7 days}},
      caps: {timescaledb: true, community: true, version: 2.19.3, license: timescale},
      state: {target: hypertable, enabled: false, job: null, compressed_chunks: 0}}'
    kind: hypertable | compression | retention | reorder | refresh_policy |
    continuous_aggregate (the CREATE statement; state unused) | silver_compression (a Silver
    fact's default; settings {time_column_name, columns}). caps default to the server's;
    state must be given (the shape each *_plan macro documents), so any server generation,
    edition or job situation can be rendered on any database.
    Prints one line "setu-plan: {json}" with statements and message; returns the plan. -#}
{% macro setu_render_lifecycle_plan(kind, schema, identifier, settings, state={}, caps=none, sql="select 1") %}
    {%- set relation = api.Relation.create(database=target.database, schema=schema,
                                           identifier=identifier) -%}
    {%- set caps = caps if caps is not none else get_capabilities() -%}
    {%- if kind == "hypertable" -%}
        {%- set raw = setu_hypertable_plan(relation, settings, state) -%}
        {%- set statements = [] -%}
        {%- for step in raw["steps"] -%}{%- do statements.append(step["sql"]) -%}{%- endfor -%}
        {%- set plan = {"statements": statements, "message": raw["notes"] | join("; ") or none} -%}
    {%- elif kind == "compression" -%}
        {%- set plan = setu_compression_plan(relation, settings.get("compression"), caps, state) -%}
    {%- elif kind == "silver_compression" -%}
        {%- set compression = setu_silver_compression(settings["time_column_name"],
                                                      settings["columns"]) -%}
        {%- set plan = setu_compression_plan(relation, compression, caps, state) -%}
    {%- elif kind == "retention" -%}
        {%- set plan = setu_retention_plan(relation, settings.get("retention_policy"), caps, state,
                                           settings.get("guarded", false)) -%}
    {%- elif kind == "reorder" -%}
        {%- set plan = setu_reorder_plan(relation, settings.get("reorder_policy"), caps, state) -%}
    {%- elif kind == "refresh_policy" -%}
        {%- set plan = setu_refresh_policy_plan(relation, settings.get("refresh_policy"), caps, state) -%}
    {%- elif kind == "continuous_aggregate" -%}
        {%- set plan = {"statements": [setu_continuous_aggregate_sql(relation, sql, settings)],
                        "message": none} -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("setu_render_lifecycle_plan: unknown kind "
            ~ (kind | tojson)) }}
    {%- endif -%}
    {{ log("setu-plan: " ~ tojson(plan), info=true) }}
    {{ return(plan) }}
{% endmacro %}
