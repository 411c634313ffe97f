{#- Every rejected Bronze row, with its reason and its values as sent. Written by the fact
    models in the same transaction as their accepted rows; this model only creates it. -#}
{{ config(materialized='ensured_table', unique_key=['source_table', 'bronze_id']) }}
{%- set value_columns = {
    "time": "timestamptz", "ingested_at": "timestamptz", "gateway_id": "text",
} %}
{%- for spec in bronze_table_specs().values() %}
    {%- for column_name, data_type in spec["columns"] %}
        {%- do value_columns.update({column_name: data_type}) %}
    {%- endfor %}
{%- endfor %}

select
    null::text as source_table,
    null::bigint as bronze_id,
    null::text as reason,
    {%- for column_name, data_type in value_columns.items() %}
        null::{{ data_type }} as {{ column_name }},
    {%- endfor %}
    null::timestamptz as quarantined_at
where false
