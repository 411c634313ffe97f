{#- A SQL string literal for any text value (quotes doubled, then dbt.string_literal). -#}
{% macro setu_literal(value) %}
    {{ return(dbt.string_literal(value | string | replace("'", "''"))) }}
{% endmacro %}
