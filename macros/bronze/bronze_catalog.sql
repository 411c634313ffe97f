{#- What the Bronze schema holds now: columns and indexes per table, and which tables are
    hypertables. create_bronze_tables emits only the DDL that is missing, because
    `alter table ... add column if not exists` and `create index if not exists` lock the
    table even when there is nothing to do, and on every dbt run that lock would block (or
    deadlock with) the gateways writing Bronze. -#}
{% macro bronze_catalog(timescaledb) %}
    {%- set catalog = {"columns": {}, "indexes": {}, "hypertables": []} -%}
    {%- set columns_query -%}
        select table_name, column_name from information_schema.columns
        where table_schema = 'bronze'
    {%- endset -%}
    {%- for row in run_query(columns_query).rows -%}
        {%- do catalog["columns"].setdefault(row[0], []).append(row[1]) -%}
    {%- endfor -%}
    {%- set indexes_query -%}
        select tablename, indexname from pg_indexes where schemaname = 'bronze'
    {%- endset -%}
    {%- for row in run_query(indexes_query).rows -%}
        {%- do catalog["indexes"].setdefault(row[0], []).append(row[1]) -%}
    {%- endfor -%}
    {%- if timescaledb -%}
        {%- set hypertables_query -%}
            select hypertable_name from timescaledb_information.hypertables
            where hypertable_schema = 'bronze'
        {%- endset -%}
        {%- for row in run_query(hypertables_query).rows -%}
            {%- do catalog["hypertables"].append(row[0]) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(catalog) }}
{% endmacro %}
