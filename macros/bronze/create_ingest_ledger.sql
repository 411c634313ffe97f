{#- The ingest ledger in the protected schema _ingest: one row per loaded file (keyed by the
    sha256 of its content) or simulator run (keyed by the sha256 of its parameters). `setu
    ingest` and `setu simulate` write the row in the same transaction as the Bronze rows it
    covers, so a source is loaded exactly once: a second load of the same content is a no-op. -#}
{% macro create_ingest_ledger() %}
    create schema if not exists _ingest;
    revoke all on schema _ingest from public;
    create table if not exists _ingest.ledger (
        content_sha256 text primary key,
        source_kind text not null,
        source_name text not null,
        table_name text,
        row_count bigint not null default 0,
        byte_count bigint,
        loaded_at timestamptz not null default now(),
        loaded_by text not null default current_user
    );
{% endmacro %}
