{#- Creates or evolves the Bronze tables, idempotently (part of setup_warehouse). With
    TimescaleDB each is a hypertable on time with a chunk interval sized to the memory budget
    (an interval changed in vars is applied with set_chunk_time_interval, which affects new
    chunks only); without it, a plain table with a BRIN index on time.
    create_default_indexes is off: the default (time desc) index is redundant next to the
    contract's two and costs ingest speed. -#}
{% macro create_bronze_tables() %}
    {%- set caps = get_capabilities() -%}
    {%- set specs = bronze_table_specs() -%}
    {%- do report_missing_bronze_columns(specs) -%}
    create schema if not exists bronze;
    {%- set present = bronze_catalog(caps["timescaledb"]) %}
    {%- for table_name, spec in specs.items() %}
        {%- set relation = "bronze." ~ adapter.quote(table_name) %}
        {%- set entity = spec["entity_column"] %}
        {%- set columns = present["columns"].get(table_name, []) %}
        {%- set indexes = present["indexes"].get(table_name, []) %}
        {%- if not columns %}
    create table if not exists {{ relation }} (
        id bigint generated always as identity,
        time timestamptz not null,
        ingested_at timestamptz not null default now(),
        gateway_id text
    );
        {%- endif %}
        {%- for column_name, data_type in spec["columns"] if column_name not in columns %}
    alter table {{ relation }} add column if not exists {{ adapter.quote(column_name) }} {{ data_type }};
        {%- endfor %}
        {%- set wanted_indexes = [
            (table_name ~ "_id_time_idx", "(id, time desc)"),
            (table_name ~ "_" ~ entity ~ "_time_idx", "(" ~ adapter.quote(entity) ~ ", time desc)"),
        ] %}
        {%- for index_columns in spec.get("extra_indexes", []) %}
            {%- do wanted_indexes.append((table_name ~ "_" ~ index_columns[0] ~ "_time_idx",
                "(" ~ index_columns | join(", ") ~ ")")) %}
        {%- endfor %}
        {%- if caps["timescaledb"] %}
            {%- set interval = "interval '" ~ chunk_time_interval_seconds(table_name, spec) ~ " seconds'" %}
            {%- if table_name not in present["hypertables"] %}
    select create_hypertable(
        relation => {{ sql_literal(relation) }}::regclass,
        dimension => by_range('time', {{ interval }}),
        create_default_indexes => false,
        if_not_exists => true,
        migrate_data => true
    );
            {%- endif %}
    select set_chunk_time_interval(
        hypertable => {{ sql_literal(relation) }}::regclass,
        chunk_time_interval => {{ interval }}
    )
    from timescaledb_information.dimensions
    where hypertable_schema = 'bronze'
        and hypertable_name = {{ sql_literal(table_name) }}
        and column_name = 'time'
        and time_interval is distinct from {{ interval }};
        {%- else %}
            {%- do wanted_indexes.append((table_name ~ "_time_brin", "using brin (time)")) %}
        {%- endif %}
        {%- for index_name, definition in wanted_indexes if index_name not in indexes %}
    create index if not exists {{ adapter.quote(index_name) }} on {{ relation }} {{ definition }};
        {%- endfor %}
    {%- endfor %}
{% endmacro %}
