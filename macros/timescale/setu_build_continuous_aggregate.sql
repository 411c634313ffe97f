{#- Community edition: creates or keeps the continuous aggregate `relation` and returns the
    parts of its log line. Rebuilt (DROP MATERIALIZED VIEW + CREATE ... WITH NO DATA) only
    when `rebuild` says why (first build, --full-refresh, changed SQL); otherwise
    materialized_only is altered in place when it differs. Then: dbt `indexes` on its
    materialization hypertable, the refresh policy, and, after a (re)build with
    create_with_data (default true), the policy job scheduled to run now: a refresh cannot
    run inside dbt's transaction. Runs the statement dbt calls 'main'. -#}
{% macro setu_build_continuous_aggregate(relation, existing, sql, settings, caps, is_cagg, rebuild) %}
    {%- set parts = [] -%}
    {%- set target = relation.include(database=false) -%}
    {%- if rebuild -%}
        {%- do setu_drop_relation(relation, existing, is_cagg) -%}
        {%- call statement("main") -%}
            {{ setu_continuous_aggregate_sql(relation, sql, settings) }}
        {%- endcall -%}
        {%- do parts.append("continuous aggregate " ~ rebuild) -%}
    {%- else -%}
        {%- set wanted = settings.get("materialized_only") -%}
        {%- set query -%}
            select materialized_only from timescaledb_information.continuous_aggregates
            where view_schema = {{ sql_literal(relation.schema) }}
                and view_name = {{ sql_literal(relation.identifier) }}
        {%- endset -%}
        {%- set current = run_query(query).rows[0]["materialized_only"] -%}
        {%- if wanted is boolean and wanted != current -%}
            {%- call statement("main") -%}
                alter materialized view {{ target }}
                    set (timescaledb.materialized_only = {{ wanted | string | lower }})
            {%- endcall -%}
            {%- do parts.append("continuous aggregate materialized_only set to "
                ~ (wanted | string | lower) ~ " in place") -%}
        {%- else -%}
            {%- call statement("main") -%}
                select 1 as unchanged
            {%- endcall -%}
            {%- do parts.append("continuous aggregate unchanged") -%}
        {%- endif -%}
    {%- endif -%}
    {%- set query -%}
        select materialization_hypertable_schema as schema_name,
            materialization_hypertable_name as table_name
        from timescaledb_information.continuous_aggregates
        where view_schema = {{ sql_literal(relation.schema) }}
            and view_name = {{ sql_literal(relation.identifier) }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- set storage = api.Relation.create(database=relation.database, schema=row["schema_name"],
                                          identifier=row["table_name"], type="table") -%}
    {%- do parts.append(setu_reconcile_indexes(storage, settings.get("indexes"))) -%}
    {%- set refresh = setu_reconcile_refresh_policy(relation, settings.get("refresh_policy"), caps) -%}
    {%- do parts.append(refresh["message"]) -%}
    {%- if rebuild and settings.get("create_with_data") is not sameas false -%}
        {%- if refresh["job_id"] is not none -%}
            {%- do run_query("select alter_job(job_id => " ~ refresh["job_id"]
                ~ ", next_start => now())") -%}
            {%- do parts.append("first refresh scheduled now (job " ~ refresh["job_id"]
                ~ "; a refresh cannot run inside dbt's transaction)") -%}
        {%- else -%}
            {%- do parts.append("no data yet: without a refresh_policy run `call"
                ~ " refresh_continuous_aggregate(continuous_aggregate => '" ~ target
                ~ "', window_start => null, window_end => null)` outside a transaction") -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(parts | select | list) }}
{% endmacro %}
