{#- For a materialization to call right before it drops its table for a full refresh: a
    drop does not replicate, so the replicas would keep the old rows and stop at the first
    rebuilt row whose key they already hold (duplicate key, the apply worker retries for
    ever). A truncate does replicate: the replicas empty their copy too, then take the
    rebuilt rows. A no-op outside the published schemas or while no publication exists.
    A changed column list still needs `setu replica init --resync`. Returns "". -#}
{% macro truncate_published_table(relation) %}
    {%- if not execute or relation is none or relation.schema not in replica_schemas() -%}
        {{ return("") }}
    {%- endif -%}
    {%- set published_sql -%}
        select exists(
            select from pg_publication_tables
            where
                pubname = {{ sql_literal(replica_publication_name()) }}
                and schemaname = {{ sql_literal(relation.schema) }}
                and tablename = {{ sql_literal(relation.identifier) }}
        ) as published
    {%- endset -%}
    {%- if run_query(published_sql).rows[0]["published"] -%}
        {%- do run_query("truncate table " ~ relation) -%}
    {%- endif -%}
    {{ return("") }}
{% endmacro %}
