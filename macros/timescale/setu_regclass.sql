{#- The relation as a regclass expression for TimescaleDB's API: '"schema"."table"'::regclass
    (no database part: regclass rejects cross-database names). -#}
{% macro setu_regclass(relation) %}
    {{ return(sql_literal(relation.include(database=false) | string) ~ "::regclass") }}
{% endmacro %}
