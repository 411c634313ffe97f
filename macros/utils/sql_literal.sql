{#- A SQL string literal with embedded quotes doubled (dbt's string_literal does not escape,
    so a quote in a config value or in compiled SQL would end the literal early). With
    standard_conforming_strings on (the default), backslashes need no escaping. -#}
{% macro sql_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ (value | string).replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
