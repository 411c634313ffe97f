{#- Compression as the server has it for a hypertable or continuous aggregate:
    {"target": "hypertable" | "cagg" | none, "enabled", "segmentby", "orderby",
     "compressed_chunks", "job"}. -#}
{% macro setu_compression_state(relation, schedule_sql=none, checks=[]) %}
    {%- set schema_lit = sql_literal(relation.schema) -%}
    {%- set name_lit = sql_literal(relation.identifier) -%}
    {%- set query -%}
        with target as (
            select 'hypertable' as target, hypertable_schema as ht_schema,
                hypertable_name as ht_name, compression_enabled
            from timescaledb_information.hypertables
            where hypertable_schema = {{ schema_lit }} and hypertable_name = {{ name_lit }}
            union all
            select 'cagg', materialization_hypertable_schema, materialization_hypertable_name,
                compression_enabled
            from timescaledb_information.continuous_aggregates
            where view_schema = {{ schema_lit }} and view_name = {{ name_lit }}
        )
        select
            t.target,
            t.compression_enabled as enabled,
            s.segmentby,
            s.orderby,
            (
                select count(*)
                from timescaledb_information.chunks as c
                where c.hypertable_schema = t.ht_schema and c.hypertable_name = t.ht_name
                    and c.is_compressed
            ) as compressed_chunks
        from target as t
        left join timescaledb_information.hypertable_compression_settings as s
            on s.hypertable = format('%I.%I', t.ht_schema, t.ht_name)::regclass
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}
        {{ return({"target": none, "enabled": false, "segmentby": none, "orderby": none,
                   "compressed_chunks": 0, "job": none}) }}
    {%- endif -%}
    {{ return({
        "target": rows[0]["target"], "enabled": rows[0]["enabled"],
        "segmentby": rows[0]["segmentby"], "orderby": rows[0]["orderby"],
        "compressed_chunks": rows[0]["compressed_chunks"] | int,
        "job": setu_policy_job_state(relation, "policy_compression", schedule_sql, checks),
    }) }}
{% endmacro %}
