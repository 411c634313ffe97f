{#- Checks SETU's vars (dbt_project.yml, --vars) before anything runs: setup_warehouse_ddl
    calls it first, so on-run-start and `setu bronze` stop before any DDL. Interval vars must
    cast to a positive PostgreSQL interval (the server's own parser decides, through a
    function in the session's temporary schema: nothing is created in the database); count
    vars must be positive numbers. A bad value is ONE compiler error naming the var. -#}
{% macro validate_setu_vars() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set interval_vars = ["setu_late_arrival_window", "setu_bronze_compress_after",
                             "setu_silver_compress_after", "setu_bronze_retention"] -%}
    {%- set count_vars = {"setu_batch_size": "^[0-9]+$",
                          "setu_memory_budget_bytes": "^[0-9]+([.][0-9]+)?$",
                          "setu_expected_rows_per_second": "^[0-9]+([.][0-9]+)?$"} -%}
    {%- for name, pattern in count_vars.items() -%}
        {%- set value = var(name, none) -%}
        {%- if value is not none and (value is boolean
            or not modules.re.match(pattern, value | string | trim) or value | float <= 0) -%}
            {{ exceptions.raise_compiler_error("setu: var " ~ name ~ " = " ~ setu_quoted(value)
                ~ " is not a positive " ~ ("whole " if pattern == "^[0-9]+$" else "")
                ~ "number; fix it in dbt_project.yml vars or --vars") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set given = [] -%}
    {%- for name in interval_vars if var(name, none) is not none -%}
        {%- do given.append("(" ~ sql_literal(name) ~ ", " ~ sql_literal(var(name)) ~ ")") -%}
    {%- endfor -%}
    {%- if not given -%}{{ return("") }}{%- endif -%}
    {%- set check -%}
        create or replace function pg_temp.setu_is_positive_interval(p_value text)
        returns boolean
        language plpgsql
        as $fn$
        begin
            return p_value::interval > interval '0';
        exception when others then
            return false;
        end;
        $fn$;
        select v.name
        from (values {{ given | join(", ") }}) as v (name, value)
        where not pg_temp.setu_is_positive_interval(v.value)
    {%- endset -%}
    {%- set invalid = run_query(check).columns[0].values() -%}
    {%- if invalid | length -%}
        {{ exceptions.raise_compiler_error("setu: var " ~ invalid[0] ~ " = "
            ~ setu_quoted(var(invalid[0])) ~ " is not a positive interval; write e.g. "
            ~ "'1 hour' or '30 days' in dbt_project.yml vars or --vars") }}
    {%- endif -%}
    {{ return("") }}
{% endmacro %}

{#- A config or var value as the user wrote it, for an error message: strings in double
    quotes, as they are (tojson would escape a quote as \u0027), anything else as JSON. -#}
{% macro setu_quoted(value) %}
    {{ return('"' ~ value ~ '"' if value is string else value | tojson) }}
{% endmacro %}
