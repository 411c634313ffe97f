{#- The replica identity of one table, for a materialization to call right after it creates
    (or, on a full refresh, recreates) its table: once the publication exists, a new table
    in a published schema without one would fail its first delete ("cannot delete from table
    ... because it does not have a replica identity and publishes deletes"). A no-op outside
    the published schemas or while no publication exists. Runs in the model's transaction;
    returns "". -#}
{% macro set_replica_identity(relation) %}
    {%- if not execute or relation.schema not in replica_schemas() -%}
        {{ return("") }}
    {%- endif -%}
    {%- set published_sql -%}
        select exists(
            select from pg_publication
            where pubname = {{ sql_literal(replica_publication_name()) }}
        ) as published
    {%- endset -%}
    {%- if run_query(published_sql).rows[0]["published"] -%}
        {%- do set_replica_identities([relation.schema], only=relation) -%}
    {%- endif -%}
    {{ return("") }}
{% endmacro %}
