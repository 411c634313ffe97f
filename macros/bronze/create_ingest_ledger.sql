{#- The ingest ledger in the protected schema _ingest: one row per loaded file (keyed by the
    sha256 of its content) or simulator run (keyed by the sha256 of its parameters). `setu
    ingest` and `setu simulate` write the row in the same transaction as the Bronze rows it
    covers, so a source is loaded exactly once: a second load of the same content is a no-op.
    An MTConnect SHDR load also records the digest of the mapping it was read with, so a file
    loaded with a wrong mapping can be replaced (`setu mtconnect ingest --replace`), and the
    MTConnect agent follower keeps its cursor (instanceId, next sequence) in agent_cursors,
    committed with the rows of each page. -#}
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
    alter table _ingest.ledger add column if not exists mapping_sha256 text;
    alter table _ingest.ledger add column if not exists mapping_name text;
    alter table _ingest.ledger add column if not exists replaced_count integer not null
    default 0;
    create table if not exists _ingest.agent_cursors (
        agent_url text not null,
        device text not null,
        machine_id bigint not null,
        instance_id text,
        next_sequence bigint,
        mapper_state jsonb,
        observations bigint not null default 0,
        rows_written bigint not null default 0,
        lost_sequences bigint not null default 0,
        updated_at timestamptz not null default now(),
        primary key (agent_url, device)
    );
{% endmacro %}
