{#- The ETL control plane in the protected schema _etl: one watermark row per incremental
    model and source. last_processed_id is the highest Bronze (or Silver change) id the model
    has taken in; batch_end_id is the exact horizon of the batch in progress. horizon_id is
    the highest id whose every transaction has ended; pending_id is a newer horizon that
    waits for the writers listed in pending_writers (see _etl.source_horizon). -#}
{% macro create_etl_control_plane() %}
    create schema if not exists _etl;
    revoke all on schema _etl from public;
    create table if not exists _etl.watermarks (
        model_name text not null,
        source_name text not null,
        last_processed_id bigint not null default 0,
        last_processed_ts timestamptz,
        batch_end_id bigint,
        rows_processed bigint not null default 0,
        updated_at timestamptz not null default now(),
        primary key (model_name, source_name)
    );
    alter table _etl.watermarks add column if not exists horizon_id bigint not null default 0;
    alter table _etl.watermarks add column if not exists pending_id bigint;
    alter table _etl.watermarks add column if not exists pending_writers text [];
    create sequence if not exists _etl.silver_change_seq;
{% endmacro %}
