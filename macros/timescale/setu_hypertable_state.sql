{#- What the server says about a relation, for the hypertable plan: whether it exists, is a
    hypertable or a continuous aggregate, holds rows, the time column's type, and its
    dimensions (timescaledb_information.dimensions) as plain dicts. Needs TimescaleDB. -#}
{% macro setu_hypertable_state(relation, time_column_name=none) %}
    {%- set schema_lit = sql_literal(relation.schema) -%}
    {%- set name_lit = sql_literal(relation.identifier) -%}
    {%- set query -%}
        select
            to_regclass({{ sql_literal(relation.include(database=false) | string) }})
                is not null as relation_exists,
            exists(
                select from timescaledb_information.hypertables
                where hypertable_schema = {{ schema_lit }} and hypertable_name = {{ name_lit }}
            ) as is_hypertable,
            exists(
                select from timescaledb_information.continuous_aggregates
                where view_schema = {{ schema_lit }} and view_name = {{ name_lit }}
            ) as is_cagg,
            (
                select format_type(a.atttypid, a.atttypmod)
                from pg_attribute as a
                inner join pg_class as c on c.oid = a.attrelid
                inner join pg_namespace as n on n.oid = c.relnamespace
                where n.nspname = {{ schema_lit }} and c.relname = {{ name_lit }}
                    and a.attname = {{ sql_literal(time_column_name or "") }}
                    and not a.attisdropped
            ) as time_column_type
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- set state = {
        "relation_exists": row["relation_exists"], "is_hypertable": row["is_hypertable"],
        "is_cagg": row["is_cagg"], "time_column_type": row["time_column_type"],
        "has_rows": false, "dimensions": [],
    } -%}
    {%- if row["relation_exists"] and not row["is_hypertable"] and not row["is_cagg"] -%}
        {%- set rows_query -%}
            select exists(select from {{ relation.include(database=false) }}) as has_rows
        {%- endset -%}
        {%- do state.update({"has_rows": run_query(rows_query).rows[0]["has_rows"]}) -%}
    {%- endif -%}
    {%- if row["is_hypertable"] -%}
        {%- set dims_query -%}
            select column_name, dimension_type, time_interval::text as time_interval,
                integer_interval, num_partitions, integer_now_func
            from timescaledb_information.dimensions
            where hypertable_schema = {{ schema_lit }} and hypertable_name = {{ name_lit }}
            order by dimension_number
        {%- endset -%}
        {%- for dim in run_query(dims_query).rows -%}
            {%- do state["dimensions"].append({
                "column_name": dim["column_name"], "dimension_type": dim["dimension_type"],
                "time_interval": dim["time_interval"], "integer_interval": dim["integer_interval"],
                "num_partitions": dim["num_partitions"],
                "integer_now_func": dim["integer_now_func"],
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(state) }}
{% endmacro %}
