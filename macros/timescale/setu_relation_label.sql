{#- "<schema>.<identifier>", the name SETU uses for a relation in log lines and errors. -#}
{% macro setu_relation_label(relation) %}
    {{ return(relation.schema ~ "." ~ relation.identifier) }}
{% endmacro %}
