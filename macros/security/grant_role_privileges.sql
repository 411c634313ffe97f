{#- The schemas setu_etl owns: Bronze, master, the protected _etl and _ingest, and every schema a
    model builds into (silver, gold, webapp, staging, rollups, ...), read from the project
    so a new model schema is covered without a change here. The target's default schema
    (public) is shared with other tools and stays with its owner. -#}
{% macro setu_etl_schemas() %}
    {%- set schemas = ["bronze", "master", "_etl", "_ingest"] -%}
    {%- for node in graph.nodes.values() if node.resource_type == "model" -%}
        {%- if node.config.materialized != "ephemeral" and node.schema not in schemas
            and node.schema not in [target.schema, "public"] -%}
            {%- do schemas.append(node.schema) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(schemas) }}
{% endmacro %}

{#- on-run-end hook: re-applies every grant of the SETU roles, so tables dbt created or
    rebuilt in this run are covered at once (default privileges cover them too, see
    grant_role_privileges_sql). A no-op where `setu roles` was never run. -#}
{% macro grant_role_privileges() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set found = run_query("select count(*) from pg_roles where rolname = any("
        ~ setu_literal_array(setu_role_names()) ~ ")").columns[0].values()[0] -%}
    {%- if found | int < setu_role_names() | length -%}{{ return("") }}{%- endif -%}
    {#- Only setu_etl, its members and superusers can hand out what setu_etl owns. -#}
    {%- set may_grant = run_query("select pg_has_role(current_user, 'setu_etl', 'MEMBER')")
        .columns[0].values()[0] -%}
    {%- if not may_grant -%}{{ return("") }}{%- endif -%}
    {%- set existing = run_query("select nspname from pg_namespace where nspname = any("
        ~ setu_literal_array(setu_etl_schemas()) ~ ")").columns[0].values() | list -%}
    select pg_advisory_xact_lock(hashtext('setu.grant_role_privileges'));
    {{ grant_role_privileges_sql(existing) }}
{% endmacro %}

{#- The grants, idempotent. Ownership: what the current user may hand over in setu_etl's
    schemas goes to setu_etl, so every member can rebuild it and the SECURITY DEFINER batch
    functions run as setu_etl, never as the superuser that happened to create them.
    Default privileges are set for setu_etl and for the current user (the role that runs
    dbt); setu_etl's are global for the current user, so a schema dropped and created again
    cannot leave the pipeline without access to its tables. -#}
{% macro grant_role_privileges_sql(existing=none) %}
    {%- set present = existing if existing is not none else setu_etl_schemas() -%}
    {%- set etl_schemas = setu_etl_schemas() | select("in", present) | list -%}
    {%- set reader_schemas = ["gold", "webapp", "master"] | select("in", present) | list -%}
    {%- set analyst_schemas = ["silver", "gold"] | select("in", present) | list -%}
    {%- set schema_array = setu_literal_array(etl_schemas) -%}
    do $setu$
    declare
        v_object record;
        v_kind text;
    begin
        -- Only what the current user may give away: a superuser, or a member of both roles.
        if not pg_has_role(current_user, 'setu_etl', 'MEMBER') then
            return;
        end if;
        for v_object in
            select n.nspname
            from pg_namespace as n
            where n.nspname = any({{ schema_array }})
                and n.nspowner <> 'setu_etl'::regrole
                and pg_has_role(current_user, n.nspowner, 'USAGE')
        loop
            execute format('alter schema %I owner to setu_etl', v_object.nspname);
        end loop;
        for v_object in
            select format('%I.%I', n.nspname, c.relname) as relation, c.relkind, n.nspname,
                c.relname
            from pg_class as c
            inner join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname = any({{ schema_array }})
                and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
                and c.relowner <> 'setu_etl'::regrole
                and pg_has_role(current_user, c.relowner, 'USAGE')
                -- Identity and serial sequences follow their table.
                and not exists (
                    select from pg_depend as d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid
                        and d.deptype in ('a', 'i', 'e')
                )
        loop
            v_kind := case v_object.relkind
                when 'v' then 'view'
                when 'm' then 'materialized view'
                when 'S' then 'sequence'
                when 'f' then 'foreign table'
                else 'table'
            end;
            -- A continuous aggregate is a view in pg_class, altered as a materialized view.
            if v_object.relkind = 'v'
                and to_regclass('_timescaledb_catalog.continuous_agg') is not null then
                execute 'select case when exists (select from _timescaledb_catalog.continuous_agg'
                    || ' where user_view_schema = $1 and user_view_name = $2)'
                    || ' then ''materialized view'' else ''view'' end'
                    into v_kind using v_object.nspname, v_object.relname;
            end if;
            execute format('alter %s %s owner to setu_etl', v_kind, v_object.relation);
        end loop;
        for v_object in
            select format('%I.%I(%s)', n.nspname, p.proname,
                pg_get_function_identity_arguments(p.oid)) as routine
            from pg_proc as p
            inner join pg_namespace as n on p.pronamespace = n.oid
            where n.nspname = any({{ schema_array }})
                and p.proowner <> 'setu_etl'::regrole
                and pg_has_role(current_user, p.proowner, 'USAGE')
                and not exists (
                    select from pg_depend as d
                    where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
                )
        loop
            execute format('alter routine %s owner to setu_etl', v_object.routine);
        end loop;
    end;
    $setu$;
    {%- for schema in etl_schemas %}
        {%- set quoted = adapter.quote(schema) %}
    grant usage, create on schema {{ quoted }} to setu_etl;
    grant all on all tables in schema {{ quoted }} to setu_etl;
    grant all on all sequences in schema {{ quoted }} to setu_etl;
    {%- endfor %}
    {#- The batch functions are SECURITY DEFINER: only the pipeline may call them. -#}
    {%- if "_etl" in etl_schemas %}
    revoke all on schema _etl from public;
    revoke execute on all routines in schema _etl from public;
    grant execute on all routines in schema _etl to setu_etl;
    {%- endif %}
    {%- if "bronze" in etl_schemas %}
    grant usage on schema bronze to setu_ingest;
    grant insert on all tables in schema bronze to setu_ingest;
    {%- endif %}
    {%- if "_ingest" in etl_schemas %}
    revoke all on schema _ingest from public;
    grant usage on schema _ingest to setu_ingest, setu_provision;
    {#- Table by table, never the whole schema: the ledgers are written in the same
        transaction as the rows they cover but never rewritten, and the device registry is
        written only through provision_device() after `setu provision` checked the HMAC. -#}
    revoke all on all tables in schema _ingest from setu_ingest, setu_provision;
    revoke all on all routines in schema _ingest from public, setu_ingest;
    {%- endif %}
    {%- if "_ingest" in etl_schemas or "master" in etl_schemas %}
    {%- if "master" in etl_schemas %}
    grant usage on schema master to setu_ingest;
    {%- endif %}
    do $setu$
    declare
        v_grant record;
    begin
        for v_grant in
            select grants.relation, grants.privileges, grants.grantee
            from (
                values
                {%- for relation, grant in setu_ingest_table_privileges().items() %}
                (
                    {{ sql_literal(relation) }},
                    {{ sql_literal(grant[0]) }},
                    {{ sql_literal(grant[1]) }}
                ){{ "," if not loop.last }}
                {%- endfor %}
            ) as grants (relation, privileges, grantee)
            where to_regclass(grants.relation) is not null
        loop
            execute format('grant %s on %s to %I', v_grant.privileges, v_grant.relation,
                v_grant.grantee);
        end loop;
        if to_regprocedure('_ingest.provision_device(text, text, timestamptz)') is not null
            then
            grant execute on function _ingest.provision_device(text, text, timestamptz)
            to setu_provision;
        end if;
    end;
    $setu$;
    {%- endif %}
    {%- for schema in reader_schemas %}
    grant usage on schema {{ adapter.quote(schema) }} to setu_reader;
    grant select on all tables in schema {{ adapter.quote(schema) }} to setu_reader;
    {%- endfor %}
    {%- for schema in analyst_schemas %}
    grant usage on schema {{ adapter.quote(schema) }} to setu_analyst;
    grant select on all tables in schema {{ adapter.quote(schema) }} to setu_analyst;
    {%- endfor %}

    {#- Tables created later, by setu_etl or by the current user (the role running dbt). -#}
    {%- set creators = ["setu_etl"] -%}
    {%- set current = run_query("select current_user").columns[0].values()[0] if execute else "setu_etl" -%}
    {%- do creators.append(current) if current not in creators -%}
    {%- for creator in creators %}
        {%- set for_role = "alter default privileges for role " ~ adapter.quote(creator) %}
        {%- if creator != "setu_etl" %}
    {{ for_role }} grant all on tables to setu_etl;
    {{ for_role }} grant all on sequences to setu_etl;
        {%- endif %}
        {%- if "bronze" in etl_schemas %}
    {{ for_role }} in schema bronze grant insert on tables to setu_ingest;
        {%- endif %}
        {%- if "_ingest" in etl_schemas %}
    {#- Set by earlier versions: a new _ingest table gets its grants from the list above. -#}
    {{ for_role }} in schema _ingest revoke select, insert, update on tables from setu_ingest;
        {%- endif %}
        {%- for schema in reader_schemas %}
    {{ for_role }} in schema {{ adapter.quote(schema) }} grant select on tables to setu_reader;
        {%- endfor %}
        {%- for schema in analyst_schemas %}
    {{ for_role }} in schema {{ adapter.quote(schema) }} grant select on tables to setu_analyst;
        {%- endfor %}
    {%- endfor %}
{% endmacro %}

{#- What the writing roles may do outside Bronze, table by table:
    {schema.table: [privileges, role]}. The ledgers are append-only for setu_ingest (select
    for the exactly-once check, insert); the loaders' state is kept current (update, never
    delete); sync-edge reads the master data it maps gateway rows with; the device registry
    is nobody's to write: setu_provision goes through provision_device(). -#}
{% macro setu_ingest_table_privileges() %}
    {%- set append_only = "select, insert" -%}
    {%- set kept_current = "select, insert, update" -%}
    {{ return({
        "_ingest.ledger": [kept_current, "setu_ingest"],
        "_ingest.agent_cursors": [kept_current, "setu_ingest"],
        "_ingest.edge_sync_ledger": [append_only, "setu_ingest"],
        "_ingest.edge_unmapped": [append_only, "setu_ingest"],
        "_ingest.edge_part_counters": [kept_current, "setu_ingest"],
        "_ingest.edge_machines": [kept_current, "setu_ingest"],
        "_ingest.edge_shift_counters": [kept_current, "setu_ingest"],
        "_ingest.edge_open_cycles": [kept_current, "setu_ingest"],
        "_ingest.error_ledger": ["insert", "setu_provision"],
        "master.machines": ["select", "setu_ingest"],
        "master.sites": ["select", "setu_ingest"],
        "master.shifts": ["select", "setu_ingest"],
        "master.gateway_machines": ["select", "setu_ingest"],
        "master.gateway_statuses": ["select", "setu_ingest"],
    }) }}
{% endmacro %}

{#- array['a', 'b']::text [] for a list of strings. -#}
{% macro setu_literal_array(values) %}
    {%- set literals = [] -%}
    {%- for value in values -%}
        {%- do literals.append(sql_literal(value)) -%}
    {%- endfor -%}
    {{ return("array[" ~ literals | join(", ") ~ "]::text []") }}
{% endmacro %}
