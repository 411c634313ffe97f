{#- Drops a relation SETU is about to rebuild; a continuous aggregate needs DROP MATERIALIZED
    VIEW (its policies go with it), anything else goes through dbt's drop_relation. -#}
{% macro setu_drop_relation(relation, existing, is_cagg) %}
    {%- if is_cagg -%}
        {%- do run_query("drop materialized view if exists "
            ~ relation.include(database=false) ~ " cascade") -%}
    {%- elif existing is not none -%}
        {%- do adapter.drop_relation(existing) -%}
    {%- endif -%}
{% endmacro %}
