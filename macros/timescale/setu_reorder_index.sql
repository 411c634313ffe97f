{#- The index a reorder policy orders chunks by, from config reorder_policy.index (a dbt
    index config {columns: [...]} or an index name): {"name", "columns", "create_sql"}.
    An existing index on exactly those columns (in order) is reused; otherwise name is a
    stable "<table>_setu_reorder_idx" and create_sql creates it (create_index: false turns
    creation off). -#}
{% macro setu_reorder_index(relation, reorder) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set index = reorder.get("index") -%}
    {%- if index is string -%}
        {{ return({"name": index, "columns": none, "create_sql": none}) }}
    {%- endif -%}
    {%- if index is not mapping or not index.get("columns") -%}
        {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config reorder_policy.index"
            ~ " needs columns ({columns: [machine_id, time]}) or an index name") }}
    {%- endif -%}
    {%- set columns = setu_column_list(index["columns"], label, "reorder_policy.index.columns",
                                       with_order=true).split(", ") -%}
    {%- set names = [] -%}
    {%- for column in columns -%}{%- do names.append(column.split(" ")[0]) -%}{%- endfor -%}
    {%- set query -%}
        select c.relname as index_name
        from pg_index as i
        inner join pg_class as c on c.oid = i.indexrelid
        where i.indrelid = {{ setu_regclass(relation) }}
            and array(
                select a.attname::text
                from unnest(i.indkey::int2[]) with ordinality as k (attnum, position)
                inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
                order by k.position
            ) = array[{% for name in names %}{{ sql_literal(name) }}{{ ", " if not loop.last }}{% endfor %}]::text[]
        order by c.relname
        limit 1
    {%- endset -%}
    {%- set rows = run_query(query).rows if execute else [] -%}
    {%- if rows | length > 0 -%}
        {{ return({"name": rows[0]["index_name"], "columns": columns, "create_sql": none}) }}
    {%- endif -%}
    {%- set name = (relation.identifier[:40] ~ "_setu_reorder_idx") -%}
    {%- set create_sql = none if reorder.get("create_index") is sameas false else
        "create index if not exists " ~ adapter.quote(name) ~ " on "
        ~ relation.include(database=false) ~ " (" ~ columns | join(", ") ~ ")" -%}
    {{ return({"name": name, "columns": columns, "create_sql": create_sql, "missing": true}) }}
{% endmacro %}
