{#- The contract fixes schema names (silver, gold, webapp): a custom schema is used as is,
    not prefixed with the target schema as dbt does by default. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
