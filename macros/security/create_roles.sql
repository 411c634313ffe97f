{#- SETU's five NOLOGIN group roles (docs/security.md). A login user gets one with
    `setu roles --grant LOGIN=ROLE` (grant_setu_role below):
    - setu_ingest: INSERT into Bronze (and its own ledger in _ingest), nothing else;
    - setu_etl: owns the warehouse (Bronze and master DDL, Silver, Gold, webapp, _etl) and
      runs dbt and the in-database jobs;
    - setu_reader: SELECT on gold, webapp and master (dashboards, the web app);
    - setu_analyst: SELECT on silver and gold;
    - setu_provision: registers devices through _ingest.provision_device() and records
      refused startup messages (`setu provision`, whoever holds the fleet's secret).
    setu_ingest and setu_etl commit with synchronous_commit = off. PostgreSQL applies a role's
    settings only to sessions that log in as that role, never to its members, so
    grant_setu_role copies them onto each login it grants. -#}
{% macro setu_role_names() %}
    {{ return(["setu_ingest", "setu_etl", "setu_reader", "setu_analyst", "setu_provision"]) }}
{% endmacro %}

{#- run-operation entry point for `setu roles`: creates the roles when missing, sets their
    session defaults, grants what each may do (grant_role_privileges) and, for members
    ({login: role}), the membership. Idempotent; run it as a superuser or the database
    owner. -#}
{% macro create_roles(members={}) %}
    {%- set names = setu_role_names() -%}
    {%- for login, role in members.items() -%}
        {%- set role = role if role.startswith("setu_") else "setu_" ~ role -%}
        {%- if role not in names -%}
            {{ exceptions.raise_compiler_error("setu: --grant " ~ login ~ "=" ~ role
                ~ ": unknown role; choose one of " ~ names | join(", ")) }}
        {%- endif -%}
        {%- set found = run_query("select 1 from pg_roles where rolname = "
            ~ sql_literal(login)).rows | length -%}
        {%- if not found -%}
            {{ exceptions.raise_compiler_error("setu: --grant " ~ login ~ "=" ~ role
                ~ ": no role " ~ login ~ " in this cluster; create it first, e.g. "
                ~ "create role " ~ adapter.quote(login) ~ " login password '...'") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set statements -%}
        select pg_advisory_xact_lock(hashtext('setu.grant_role_privileges'));
        do $setu$
        declare
            v_role text;
        begin
            foreach v_role in array {{ setu_literal_array(names) }} loop
                if not exists (select from pg_roles where rolname = v_role) then
                    execute format('create role %I nologin', v_role);
                end if;
            end loop;
        end;
        $setu$;
        {#- Ingest and the pipeline trade the last few hundred milliseconds of acknowledged
            commits after a server crash for commit latency (docs/security.md). -#}
        alter role setu_ingest set synchronous_commit = off;
        alter role setu_etl set synchronous_commit = off;
        {%- set database = adapter.quote(target.database) %}
        grant connect on database {{ database }} to {{ names | join(", ") }};
        {#- create: dbt's `create schema if not exists`, which needs it even when the schema
            exists; temporary: the batch engine's temp table. -#}
        grant create, temporary on database {{ database }} to setu_etl;
        {#- The default schema is shared with other tools: nobody of ours creates in it. -#}
        grant usage on schema {{ adapter.quote(target.schema) }} to setu_etl;
        revoke create on schema {{ adapter.quote(target.schema) }} from public, setu_etl;
        {%- for schema in setu_etl_schemas() %}
        create schema if not exists {{ adapter.quote(schema) }} authorization setu_etl;
        {%- endfor %}
        {{ grant_role_privileges_sql() }}
        {%- for login, role in members.items() %}
            {%- set role = role if role.startswith("setu_") else "setu_" ~ role %}
        grant {{ role }} to {{ adapter.quote(login) }};
            {%- if role in ["setu_ingest", "setu_etl"] %}
        alter role {{ adapter.quote(login) }} set synchronous_commit = off;
            {%- endif %}
            {%- if role == "setu_etl" %}
        {#- What this login creates belongs to setu_etl, so any other member can replace it. -#}
        alter role {{ adapter.quote(login) }} set role = setu_etl;
            {%- endif %}
        {%- endfor %}
    {%- endset -%}
    {% do run_query(statements) %}
    {{ log("setu: roles " ~ names | join(", ") ~ " are up to date in database "
        ~ target.database, info=true) }}
    {%- for login, role in members.items() %}
        {{ log("setu: " ~ login ~ " is a member of "
            ~ (role if role.startswith("setu_") else "setu_" ~ role), info=true) }}
    {%- endfor %}
{% endmacro %}
