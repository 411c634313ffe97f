{#- Creates the dbt `indexes` config on a relation under stable names
    "<table>_setu_ix_<hash>" (create index if not exists: idempotent, unlike dbt's
    timestamped names) and drops the SETU-named indexes no longer configured. Used on the
    materialization hypertable of a continuous aggregate and on its fallback table.
    Returns a short note or none. -#}
{% macro setu_reconcile_indexes(relation, indexes) %}
    {%- set prefix = relation.identifier[:40] ~ "_setu_ix_" -%}
    {%- set wanted = [] -%}
    {%- set created = [] -%}
    {%- for index_dict in indexes or [] -%}
        {%- set index = adapter.parse_index(index_dict) -%}
        {%- set name = prefix ~ local_md5(index.columns | join(",") ~ "|" ~ index.unique
            ~ "|" ~ (index.type or "btree"))[:10] -%}
        {%- do wanted.append(name) -%}
        {%- set statement -%}
            create {{ "unique " if index.unique }}index if not exists {{ adapter.quote(name) }}
            on {{ relation.include(database=false) }}
            using {{ index.type or "btree" }} ({{ index.columns | join(", ") }})
        {%- endset -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {%- set query -%}
        select indexname from pg_indexes
        where schemaname = {{ sql_literal(relation.schema) }}
            and tablename = {{ sql_literal(relation.identifier) }}
            and starts_with(indexname, {{ sql_literal(prefix) }})
    {%- endset -%}
    {%- set dropped = [] -%}
    {%- for row in run_query(query).rows if row["indexname"] not in wanted -%}
        {%- do run_query("drop index if exists " ~ adapter.quote(relation.schema) ~ "."
            ~ adapter.quote(row["indexname"])) -%}
        {%- do dropped.append(row["indexname"]) -%}
    {%- endfor -%}
    {{ return(("dropped index " ~ dropped | join(", ")) if dropped else none) }}
{% endmacro %}
