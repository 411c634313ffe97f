{#- Rejected rows of a batch go to silver.quarantine with their reason and the row's values
    exactly as sent, read back from Bronze by id. -#}
{% macro quarantine_insert_sql(bronze_table) %}
    {%- set spec = bronze_table_specs()[bronze_table] -%}
    {%- set value_columns = ["time", "ingested_at", "gateway_id"]
        + (spec["columns"] | map(attribute=0) | list) -%}
    insert into silver.quarantine (
        source_table, bronze_id, reason, quarantined_at, {{ value_columns | join(", ") }}
    )
    select
        {{ sql_literal(bronze_table) }}, b.id, q.quarantine_reason, now(),
        {% for column in value_columns %}b.{{ column }}{{ ", " if not loop.last }}{% endfor %}
    from pg_temp._etl_batch as q
    inner join bronze.{{ bronze_table }} as b on q.bronze_id = b.id
    where q.quarantine_reason is not null
    on conflict (source_table, bronze_id) do nothing
{% endmacro %}
