{#- Creates or evolves the master and Bronze tables, idempotently, in one transaction.
    Run by on-run-start and by `setu bronze`. With TimescaleDB each Bronze table is a
    hypertable on time with a chunk interval sized to the memory budget (an interval changed
    in vars is applied with set_chunk_time_interval, which affects new chunks only); without
    it, a plain table with a BRIN index on time. create_default_indexes is off: the default
    (time desc) index is redundant next to the contract's two and costs ingest speed. -#}
{% macro create_bronze_tables() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set caps = get_capabilities() -%}
    {%- set specs = bronze_table_specs() -%}
    select pg_advisory_xact_lock(hashtext('setu.create_bronze_tables'));
    {{ master_table_ddl() }}
    create schema if not exists bronze;
    {%- for table_name, spec in specs.items() %}
        {%- set relation = "bronze." ~ adapter.quote(table_name) %}
        {%- set entity = spec["entity_column"] %}
    create table if not exists {{ relation }} (
        id bigint generated always as identity,
        time timestamptz not null,
        ingested_at timestamptz not null default now(),
        gateway_id text
    );
        {%- for column_name, data_type in spec["columns"] %}
    alter table {{ relation }} add column if not exists {{ adapter.quote(column_name) }} {{ data_type }};
        {%- endfor %}
        {%- if caps["timescaledb"] %}
            {%- set interval = "interval '" ~ chunk_time_interval_seconds(table_name, spec) ~ " seconds'" %}
    select create_hypertable(
        relation => {{ sql_literal(relation) }}::regclass,
        dimension => by_range('time', {{ interval }}),
        create_default_indexes => false,
        if_not_exists => true,
        migrate_data => true
    );
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
    create index if not exists {{ adapter.quote(table_name ~ "_time_brin") }}
        on {{ relation }} using brin (time);
        {%- endif %}
    create index if not exists {{ adapter.quote(table_name ~ "_id_time_idx") }}
        on {{ relation }} (id, time desc);
    create index if not exists {{ adapter.quote(table_name ~ "_" ~ entity ~ "_time_idx") }}
        on {{ relation }} ({{ adapter.quote(entity) }}, time desc);
        {%- for index_columns in spec.get("extra_indexes", []) %}
    create index if not exists {{ adapter.quote(table_name ~ "_" ~ index_columns[0] ~ "_time_idx") }}
        on {{ relation }} ({{ index_columns | join(", ") }});
        {%- endfor %}
    {%- endfor %}
    {{ create_ingest_ledger() }}
    {{ create_edge_ledger() }}
    {{ create_etl_control_plane() }}
    {{ create_etl_functions() }}
    {{ create_pipeline_procedure() }}
    {{ create_source_lag_function() }}
    {{ create_shift_function() }}
{% endmacro %}
