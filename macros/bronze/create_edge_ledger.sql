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
      not_a_number; nul_character, not_utf8, out_of_range, refused_by_database for a row
      PostgreSQL could not store as sent, its values spelled out so they can be stored).
    - edge_part_counters: the running part counter per machine of each gateway, since the
      edge template's cycles carry no controller counter.
    - edge_machines: the gateway's own machine list (MachineInformation_MVP: IOTID and its
      MachineID label), read to map IOTIDs to master.machines.
    - edge_shift_counters: the controller's counters per machine and shift
      (MachineWiseFocasDetails_MVP PartCount, RejCount, latest version), with the cycles
      loaded and the rejects already marked on a cycle as SCRAP for that shift.
    - edge_open_cycles: a cycle interrupted by an alarm (its first row) waiting for the row
      that finishes it; the two become one Bronze cycle. One row per machine; fragments = 0
      once nothing is held (rows are updated, never deleted: the ingest role cannot).
    - master.gateway_machines: master data, (gateway, IOTID) -> machine_id; gateways number
      their machines 1..N, so an IOTID alone names no machine.
    - master.gateway_statuses: master data, what a gateway's Status values mean as contract
      states, where its template differs from the built-in meanings. -#}
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
    create table if not exists _ingest.edge_machines (
        gateway_id text not null,
        iotid text not null,
        machine_code text,
        updated_at timestamptz not null default now(),
        primary key (gateway_id, iotid)
    );
    create table if not exists _ingest.edge_shift_counters (
        gateway_id text not null,
        machine_id bigint not null,
        shift_date text not null,
        shift_id text not null,
        part_count bigint not null default 0,
        rej_count bigint not null default 0,
        cycles bigint not null default 0,
        scrap_marked bigint not null default 0,
        reported boolean not null default false,
        updated_at timestamptz not null default now(),
        primary key (gateway_id, machine_id, shift_date, shift_id)
    );
    create table if not exists _ingest.edge_open_cycles (
        gateway_id text not null,
        machine_id bigint not null,
        cycle_start timestamptz,
        program_name text,
        fragments int not null,
        source_rowid bigint not null,
        source_updated_ts text not null,
        updated_at timestamptz not null default now(),
        primary key (gateway_id, machine_id)
    );
    create table if not exists master.gateway_machines (
        gateway_id text not null,
        iotid text not null,
        machine_id bigint not null,
        primary key (gateway_id, iotid)
    );
    create table if not exists master.gateway_statuses (
        gateway_id text not null,
        status text not null,
        state text not null check (
            upper(state) in ('OFF', 'IDLE', 'RUNNING', 'SETUP', 'ALARM', 'MAINTENANCE')
        ),
        primary key (gateway_id, status)
    );
{% endmacro %}
