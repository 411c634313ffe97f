{#- The definition hash SETU recorded for a relation the last time it built it (table
    _etl.relation_definitions), or none. A continuous aggregate whose SQL changed has a new
    hash and is rebuilt. -#}
{% macro setu_definition_hash(relation) %}
    {%- set query -%}
        select definition_hash
        from _etl.relation_definitions
        where relation_name = {{ sql_literal(setu_relation_label(relation)) }}
    {%- endset -%}
    {%- set exists = run_query("select to_regclass('_etl.relation_definitions') is not null as ok").rows[0]["ok"] -%}
    {%- if not exists -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query(query).rows -%}
    {{ return(rows[0]["definition_hash"] if rows | length > 0 else none) }}
{% endmacro %}
