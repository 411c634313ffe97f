{#- The one log line a lifecycle macro prints: "setu: <schema>.<table>: <message>". -#}
{% macro setu_log(relation, message) %}
    {%- if message -%}
        {{ log("setu: " ~ setu_relation_label(relation) ~ ": " ~ message, info=true) }}
    {%- endif -%}
{% endmacro %}
