{#- Bookkeeping of `setu sync-edge` in the protected schema _ingest, written in the same
    transaction as the Bronze rows it covers, so a gateway row is loaded exactly once even
    when the sync dies between the PostgreSQL commit and the SQLite SyncedStatus update.
    - edge_sync_ledger: one row per gateway row loaded. The gateway may rewrite a row in
      place (new UpdatedTS, SyncedStatus back to 0): that is a new version, hence
      source_updated_ts in the key ('' when the row has none). destination names where the
      row went: a bronze table or _ingest.edge_unmapped.
    - edge_unmapped: what has no Bronze home, kept as text, one row per gateway row and
      column: values of a loaded row without a Bronze column (reason no_bronze_column:
      OperatorID, Target, the servo/spindle energy split, ...) and every value of a row that
      could not be loaded at all (unmapped_parameter, unknown_machine, bad_time,
      not_a_number).
    - edge_part_counters: the running part counter per machine of each gateway, since the
      edge template's cycles carry no controller counter. -#}
{% macro create_edge_ledger() %}
    create schema if not exists _ingest;
    create table if not exists _ingest.edge_sync_ledger (
        gateway_id text not null,
        source_table text not null,
        source_rowid bigint not null,
        source_updated_ts text not null default '',
        destination text not null,
        synced_at timestamptz not null default now(),
        primary key (gateway_id, source_table, source_rowid, source_updated_ts)
    );
    create table if not exists _ingest.edge_unmapped (
        gateway_id text not null,
        source_table text not null,
        source_rowid bigint not null,
        source_updated_ts text not null default '',
        source_column text not null,
        reason text not null,
        item text,
        value text,
        machine_id bigint,
        time timestamptz,
        recorded_at timestamptz not null default now(),
        primary key (gateway_id, source_table, source_rowid, source_updated_ts, source_column)
    );
    create table if not exists _ingest.edge_part_counters (
        gateway_id text not null,
        machine_id bigint not null,
        part_count bigint not null,
        updated_at timestamptz not null default now(),
        primary key (gateway_id, machine_id)
    );
{% endmacro %}
