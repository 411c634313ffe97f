{#- run-operation entry point for `setu replica init`: creates the publication (PostgreSQL 15
    `for tables in schema`) when missing, sets its schema list when it differs, and gives
    every published table a replica identity (set_replica_identities). Idempotent; one log
    line per change. Schema publications need a superuser. -#}
{% macro create_replica_publication(publication=none, schemas=none) %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- do apply_replica_publication(publication, schemas, create_missing=true) -%}
    {{ return("") }}
{% endmacro %}

{#- on-run-end hook: once `setu replica init` has created the publication, keeps it in step
    with the project after every run (schema list, replica identity of tables that models
    created or rebuilt). Does nothing while no publication exists. Returns "". -#}
{% macro reconcile_replica_publication(publication=none, schemas=none) %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- do apply_replica_publication(publication, schemas, create_missing=false) -%}
    {{ return("") }}
{% endmacro %}

{#- The work of both, in one transaction that it commits (a hook's or an operation's
    run_query statements would otherwise each commit on their own): returns whether the
    publication exists afterwards. -#}
{% macro apply_replica_publication(publication, schemas, create_missing) %}
    {%- set publication = publication or replica_publication_name() -%}
    {%- set schemas = (schemas or replica_schemas()) | list -%}
    {%- set label = "publication " ~ publication -%}
    {% call statement("replica_publication_lock", auto_begin=true) -%}
        select pg_advisory_xact_lock(hashtext('setu.replica_publication'))
    {%- endcall %}
    {%- set state_sql -%}
        select
            p.puballtables as all_tables,
            coalesce((
                select string_agg(n.nspname, ',' order by n.nspname)
                from pg_publication_namespace as pn
                inner join pg_namespace as n on pn.pnnspid = n.oid
                where pn.pnpubid = p.oid
            ), '') as schema_names,
            exists(select from pg_publication_rel as pr where pr.prpubid = p.oid)
                as has_single_tables
        from pg_publication as p
        where p.pubname = {{ sql_literal(publication) }}
    {%- endset -%}
    {%- set rows = run_query(state_sql).rows -%}
    {%- set quoted_schemas = [] -%}
    {%- for schema_name in schemas -%}
        {%- do quoted_schemas.append(adapter.quote(schema_name)) -%}
    {%- endfor -%}
    {%- if rows | length == 0 -%}
        {%- if not create_missing -%}
            {%- do adapter.commit() -%}
            {{ return(false) }}
        {%- endif -%}
        {%- set create_sql -%}
            {%- for quoted in quoted_schemas %}
            create schema if not exists {{ quoted }};
            {%- endfor %}
            create publication {{ adapter.quote(publication) }}
                for tables in schema {{ quoted_schemas | join(", ") }};
        {%- endset -%}
        {%- do run_query(create_sql) -%}
        {{ log("setu: " ~ label ~ ": created for tables in schema "
               ~ schemas | join(", "), info=true) }}
    {%- else -%}
        {%- set row = rows[0] -%}
        {%- if row["all_tables"] -%}
            {{ exceptions.raise_compiler_error(
                label ~ " publishes all tables; drop it or choose another name "
                ~ "(var setu_replica_publication)") }}
        {%- endif -%}
        {%- set current = row["schema_names"].split(",") if row["schema_names"] else [] -%}
        {%- if (current | sort) != (schemas | sort) or row["has_single_tables"] -%}
            {%- do run_query("alter publication " ~ adapter.quote(publication)
                             ~ " set tables in schema " ~ quoted_schemas | join(", ")) -%}
            {{ log("setu: " ~ label ~ ": schemas set to " ~ schemas | join(", ")
                   ~ " (were " ~ (current | join(", ") or "none") ~ ")", info=true) }}
        {%- endif -%}
    {%- endif -%}
    {%- do set_replica_identities(schemas) -%}
    {%- do adapter.commit() -%}
    {{ return(true) }}
{% endmacro %}
