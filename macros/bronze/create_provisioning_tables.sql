{#- Device provisioning bookkeeping in the protected schema _ingest (docs/provisioning.md).
    `setu provision` verifies each platform-extension startup message in Python (the HMAC
    secret never reaches dbt or SQL) and writes one row here per message, in the same
    transaction as the rest of its file: nothing is dropped silently.
    - device_registry: one row per accepted device; announced_at is the time of its latest
      accepted startup message, so a replayed or older message cannot overwrite it.
    - error_ledger: every rejected ingest message with its reason (malformed, bad_signature,
      stale, replayed), a one-line detail and the payload as received (the secret redacted;
      a line that is not a JSON object is kept as {"raw": ...}).
    - provision_device(): the only way a role without ownership writes the registry. It is
      SECURITY DEFINER with a pinned search_path, so a caller's own objects named like
      pg_catalog's cannot run with the owner's rights; only setu_provision may execute it
      (grant_role_privileges_sql). It keeps the replay rule in the database: a message not
      newer than the device's last accepted one changes nothing. -#}
{% macro create_provisioning_tables() %}
    create schema if not exists _ingest;
    create table if not exists _ingest.device_registry (
        device_serial text primary key,
        firmware text not null,
        announced_at timestamptz not null,
        provisioned_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        provisioned_by text not null default current_user
    );
    create table if not exists _ingest.error_ledger (
        error_id bigint generated always as identity primary key,
        received_at timestamptz not null default now(),
        source text not null,
        source_name text,
        line_number int,
        reason text not null,
        detail text,
        payload jsonb not null
    );
    create index if not exists error_ledger_source_received_at_idx
        on _ingest.error_ledger (source, received_at desc);
    create or replace function _ingest.provision_device(
        p_device_serial text, p_firmware text, p_announced_at timestamptz
    ) returns text
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    as $setu$
    declare
        v_inserted boolean;
    begin
        insert into _ingest.device_registry as registry (
            device_serial, firmware, announced_at, provisioned_by
        )
        values (p_device_serial, p_firmware, p_announced_at, session_user)
        on conflict (device_serial) do update
            set firmware = excluded.firmware,
                announced_at = excluded.announced_at,
                updated_at = now()
            where registry.announced_at < excluded.announced_at
        returning xmax = 0 into v_inserted;
        return case
            when v_inserted then 'provisioned'
            when v_inserted is not null then 'updated'
            else 'replayed'
        end;
    end;
    $setu$;
    revoke all on function _ingest.provision_device(text, text, timestamptz) from public;
{% endmacro %}
