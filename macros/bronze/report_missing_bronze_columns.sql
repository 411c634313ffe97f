{#- Before create_bronze_tables evolves the Bronze tables: one log line per contract column
    missing from an existing table (dropped by hand, or a table from an older SETU), which
    create_bronze_tables then adds back, empty (the values of a dropped column are gone).
    The common columns (id, time, ingested_at, gateway_id) cannot be added back to a table
    that holds rows; their absence is one compiler error naming the table and the column. -#}
{% macro report_missing_bronze_columns(specs) %}
    {%- set query -%}
        select table_name, column_name
        from information_schema.columns
        where table_schema = 'bronze'
    {%- endset -%}
    {%- set present = {} -%}
    {%- for row in run_query(query).rows -%}
        {%- do present.setdefault(row[0], []).append(row[1]) -%}
    {%- endfor -%}
    {%- for table_name, spec in specs.items() if table_name in present -%}
        {%- for column in ["id", "time", "ingested_at"] if column not in present[table_name] -%}
            {{ exceptions.raise_compiler_error("setu: bronze." ~ table_name ~ " has no column "
                ~ column ~ ", which SETU cannot add back to a table with rows: rename the table"
                ~ " away and run `setu bronze` to create it anew, then copy its rows over") }}
        {%- endfor -%}
        {%- for column, data_type in spec["columns"]
            if column not in present[table_name] -%}
            {{ log("setu: bronze." ~ table_name ~ ": column " ~ column ~ " (" ~ data_type
                ~ ") was missing; added back, empty", info=true) }}
        {%- endfor -%}
    {%- endfor -%}
{% endmacro %}
