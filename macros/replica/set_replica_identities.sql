{#- Gives every plain table of the published schemas a replica identity, so that the deletes
    of Gold's delete+insert (and any update) replicate; without one PostgreSQL refuses them.
    Per table:
    - a primary key: the default identity (the key) is kept;
    - a usable unique index `<table>_key` (create_target_indexes makes it on the model's
      unique_key): `replica identity using index`. The index's columns must be NOT NULL;
      key columns a model declares in unique_key but not in null_safe_keys are made NOT
      NULL first (delete+insert matches them with `=`, so a null there could never be
      replaced anyway), unless the table already holds a null in one;
    - otherwise `replica identity full` (the subscriber then finds each deleted row by all
      its columns, a sequential scan on PostgreSQL 15).
    Hypertables are reported: their rows live in chunks and do not replicate. One log line per
    change; silent when every table is already right. `only` (a relation) limits it to
    that table. Runs in the caller's transaction. -#}
{% macro set_replica_identities(schemas, only=none) %}
    {%- set caps = get_capabilities() -%}
    {%- set model_keys = replica_model_keys(schemas) -%}
    {%- set tables_sql -%}
        select
            n.nspname as schema_name,
            c.relname as table_name,
            -- words, not pg_class' one-letter codes, which agate would read as booleans
            case c.relreplident
                when 'd' then 'default'
                when 'f' then 'full'
                when 'i' then 'index'
                else 'nothing'
            end as identity,
            coalesce((
                select ic.relname::text
                from pg_index as i
                inner join pg_class as ic on i.indexrelid = ic.oid
                where i.indrelid = c.oid and i.indisreplident
            ), '') as identity_index,
            exists(
                select from pg_index as i where i.indrelid = c.oid and i.indisprimary
            ) as has_primary_key,
            coalesce(key_index.index_name, '') as key_index,
            coalesce(key_index.nullable_columns, '') as nullable_key_columns,
            {%- if caps["timescaledb"] %}
            exists(
                select from timescaledb_information.hypertables as h
                where h.hypertable_schema = n.nspname and h.hypertable_name = c.relname
            ) as is_hypertable
            {%- else %}
            false as is_hypertable
            {%- endif %}
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        left join lateral (
            select
                ic.relname::text as index_name,
                (
                    select string_agg(a.attname, ',' order by a.attnum)
                    from pg_attribute as a
                    where
                        a.attrelid = c.oid
                        and a.attnum = any(i.indkey)
                        and not a.attnotnull
                ) as nullable_columns
            from pg_index as i
            inner join pg_class as ic on i.indexrelid = ic.oid
            where
                i.indrelid = c.oid
                -- identifiers longer than 63 bytes are truncated, as create index does
                and ic.relname = left(c.relname || '_key', 63)
                and i.indisunique
                and i.indimmediate
                and i.indisvalid
                and i.indpred is null
                and i.indexprs is null
        ) as key_index on true
        where
            n.nspname in (
                {%- for schema_name in schemas -%}
                {{ sql_literal(schema_name) }}{{ ", " if not loop.last }}
                {%- endfor -%}
            )
            and c.relkind = 'r'
            and c.relpersistence = 'p'
            {%- if only is not none %}
            and n.nspname = {{ sql_literal(only.schema) }}
            and c.relname = {{ sql_literal(only.identifier) }}
            {%- endif %}
        order by 1, 2
    {%- endset -%}
    {%- for row in run_query(tables_sql).rows -%}
        {%- set relation = api.Relation.create(database=target.database,
                                               schema=row["schema_name"],
                                               identifier=row["table_name"], type="table") -%}
        {%- set label = relation.schema ~ "." ~ relation.identifier -%}
        {%- if row["is_hypertable"] -%}
            {%- do setu_log(relation, "not replicated: a hypertable's rows live in its chunks, "
                            ~ "outside this schema; make it a plain table to publish it") -%}
        {%- elif row["has_primary_key"] -%}
            {%- if row["identity"] == "nothing" -%}
                {%- do run_query("alter table " ~ relation ~ " replica identity default") -%}
                {%- do setu_log(relation, "replica identity default (its primary key)") -%}
            {%- endif -%}
        {%- else -%}
            {%- set nullable = row["nullable_key_columns"].split(",")
                               if row["nullable_key_columns"] else [] -%}
            {%- set keys = model_keys.get(label) -%}
            {%- if row["key_index"] and nullable and keys is not none -%}
                {%- set settable = [] -%}
                {%- for column in nullable
                        if column in keys["unique_key"]
                        and column not in keys["null_safe_keys"] -%}
                    {%- do settable.append(column) -%}
                {%- endfor -%}
                {%- if settable | length == nullable | length -%}
                    {%- set nulls_sql -%}
                        select exists(
                            select from {{ relation }}
                            where
                            {%- for column in settable %}
                                {{ adapter.quote(column) }} is null{{ " or" if not loop.last }}
                            {%- endfor %}
                        ) as has_nulls
                    {%- endset -%}
                    {%- if run_query(nulls_sql).rows[0]["has_nulls"] -%}
                        {%- do setu_log(relation, "key column(s) " ~ settable | join(", ")
                                        ~ " hold nulls: replica identity stays full") -%}
                    {%- else -%}
                        {%- set clauses = [] -%}
                        {%- for column in settable -%}
                            {%- do clauses.append("alter column " ~ adapter.quote(column)
                                                  ~ " set not null") -%}
                        {%- endfor -%}
                        {%- do run_query("alter table " ~ relation ~ " "
                                         ~ clauses | join(", ")) -%}
                        {%- do setu_log(relation, "key column(s) " ~ settable | join(", ")
                                        ~ " set not null") -%}
                        {%- set nullable = [] -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endif -%}
            {%- if row["key_index"] and not nullable -%}
                {%- if row["identity"] != "index" or row["identity_index"] != row["key_index"] -%}
                    {%- do run_query("alter table " ~ relation ~ " replica identity using index "
                                     ~ adapter.quote(row["key_index"])) -%}
                    {%- do setu_log(relation, "replica identity using index "
                                    ~ row["key_index"]) -%}
                {%- endif -%}
            {%- elif row["identity"] != "full" -%}
                {%- do run_query("alter table " ~ relation ~ " replica identity full") -%}
                {%- do setu_log(relation, "replica identity full (no primary key and no "
                                ~ "unique key index on not-null columns)") -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
{% endmacro %}

{#- {"schema.table": {"unique_key": [...], "null_safe_keys": [...]}} for the models that
    build tables in the given schemas, from their config. -#}
{% macro replica_model_keys(schemas) %}
    {%- set keys = {} -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == "model" and node.schema in schemas -%}
        {%- set unique_key = node.config.get("unique_key") or [] -%}
        {%- do keys.update({node.schema ~ "." ~ (node.alias or node.name): {
            "unique_key": [unique_key] if unique_key is string else unique_key,
            "null_safe_keys": node.config.get("null_safe_keys") or [],
        }}) -%}
    {%- endfor -%}
    {{ return(keys) }}
{% endmacro %}
