{#- "hypertable", "cagg" (continuous aggregate) or none: what TimescaleDB makes of a
    relation. Needs TimescaleDB. -#}
{% macro setu_timescale_target(relation) %}
    {%- set schema_lit = sql_literal(relation.schema) -%}
    {%- set name_lit = sql_literal(relation.identifier) -%}
    {%- set query -%}
        select 'hypertable' as target from timescaledb_information.hypertables
        where hypertable_schema = {{ schema_lit }} and hypertable_name = {{ name_lit }}
        union all
        select 'cagg' from timescaledb_information.continuous_aggregates
        where view_schema = {{ schema_lit }} and view_name = {{ name_lit }}
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {{ return(rows[0]["target"] if rows | length > 0 else none) }}
{% endmacro %}
