{#- Predicate on timescaledb_information.jobs (alias j) for the jobs of one relation: a
    hypertable, or a continuous aggregate whose jobs name its materialization hypertable
    (2.19) or the view itself (2.20+). -#}
{% macro setu_job_relation_where(relation) %}
    {%- set schema_lit = sql_literal(relation.schema) -%}
    {%- set name_lit = sql_literal(relation.identifier) -%}
    {{ return(
        "(j.hypertable_schema, j.hypertable_name) in ("
        ~ "select " ~ schema_lit ~ "::name, " ~ name_lit ~ "::name"
        ~ " union all select materialization_hypertable_schema, materialization_hypertable_name"
        ~ " from timescaledb_information.continuous_aggregates"
        ~ " where view_schema = " ~ schema_lit ~ " and view_name = " ~ name_lit ~ ")"
    ) }}
{% endmacro %}
