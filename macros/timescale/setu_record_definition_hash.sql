{#- Records the definition hash of a relation SETU just built (see setu_definition_hash).
    The table lives in the protected schema _etl next to the ETL watermarks. -#}
{% macro setu_record_definition_hash(relation, materialization, definition_hash) %}
    {%- set statement -%}
        create schema if not exists _etl;
        create table if not exists _etl.relation_definitions (
            relation_name text primary key,
            materialization text not null,
            definition_hash text not null,
            updated_at timestamptz not null default now()
        );
        insert into _etl.relation_definitions (relation_name, materialization, definition_hash)
        values (
            {{ sql_literal(setu_relation_label(relation)) }},
            {{ sql_literal(materialization) }},
            {{ sql_literal(definition_hash) }}
        )
        on conflict (relation_name) do update
            set materialization = excluded.materialization,
                definition_hash = excluded.definition_hash,
                updated_at = now()
    {%- endset -%}
    {%- do run_query(statement) -%}
{% endmacro %}
