{#- What the server offers, asked once per macro call and branched on by every lifecycle
    macro: TimescaleDB present, its version and license (apache or timescale), pg_cron.
    Community-only calls are made only when license = 'timescale'. -#}
{% macro get_capabilities() %}
    {%- if not execute -%}
        {{ return({"timescaledb": false, "community": false, "version": none,
                   "license": "none", "pg_cron": false}) }}
    {%- endif -%}
    {%- set query -%}
        select
            (select extversion from pg_extension where extname = 'timescaledb') as version,
            coalesce(current_setting('timescaledb.license', true), 'none') as license,
            exists(select from pg_extension where extname = 'pg_cron') as pg_cron
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- set timescaledb = row["version"] is not none -%}
    {{ return({
        "timescaledb": timescaledb,
        "community": timescaledb and row["license"] == "timescale",
        "version": row["version"],
        "license": row["license"] if timescaledb else "none",
        "pg_cron": row["pg_cron"],
    }) }}
{% endmacro %}
