{#- The contract's Bronze tables, read from var setu_contract (dbt_project.yml): flat,
    strictly typed, append-only. A column added there is added to existing tables with
    `alter table ... add column`; nothing is ever dropped. row_bytes estimates a row plus its
    index entries, for chunk sizing; rows_per_second is the expected ingest rate of a
    10,000-machine plant (overridable per table by the var setu_ingest_rows_per_second). -#}
{% macro bronze_table_specs() %}
    {%- set specs = {} -%}
    {%- for name, table in var("setu_contract")["bronze"].items() -%}
        {%- do specs.update({name: {
            "entity_column": table["entity_column"],
            "columns": table["columns"],
            "row_bytes": table["row_bytes"],
            "rows_per_second": table["rows_per_second"],
            "extra_indexes": table.get("extra_indexes", []),
        }}) -%}
    {%- endfor -%}
    {{ return(specs) }}
{% endmacro %}

{#- The contract's rules for one Bronze table (var setu_contract), with empty defaults. -#}
{% macro bronze_contract(table_name) %}
    {%- set table = var("setu_contract")["bronze"][table_name] -%}
    {{ return({
        "fact": table["fact"],
        "columns": table["columns"],
        "fact_time_column": table.get("fact_time_column", "time"),
        "required": table.get("required", []),
        "required_any": table.get("required_any", []),
        "codes": table.get("codes", {}),
        "ranges": table.get("ranges", {}),
        "max_chars": table.get("max_chars", {}),
        "interval_start": table.get("interval_start"),
        "duplicate_key": table["duplicate_key"],
        "duplicate_values": table["duplicate_values"],
    }) }}
{% endmacro %}

{#- Reference tables the models read (var setu_contract); operators insert into them
    directly. -#}
{% macro master_table_ddl() %}
create schema if not exists master;
{%- for name, table in var("setu_contract")["master"].items() %}
create table if not exists master.{{ name }} (
    {%- for column_name, data_type in table["columns"] %}
    {{ column_name }} {{ data_type }},
    {%- endfor %}
    primary key ({{ table["primary_key"] | join(", ") }})
);
{%- endfor %}
{% endmacro %}
