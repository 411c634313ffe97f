{#- Runs a plan's statements in order on the model's connection (inside its transaction in a
    hook or materialization); returns the number of rows each returned. -#}
{% macro setu_run_statements(statements) %}
    {%- set counts = [] -%}
    {%- for statement in statements -%}
        {%- set result = run_query(statement) -%}
        {%- do counts.append(result.rows | length if result is not none else 0) -%}
    {%- endfor -%}
    {{ return(counts) }}
{% endmacro %}
