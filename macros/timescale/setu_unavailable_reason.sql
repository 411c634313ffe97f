{#- Why a Community-only feature is off on this server, as the tail of a log line;
    none when the server offers it. -#}
{% macro setu_unavailable_reason(caps) %}
    {%- if not caps["timescaledb"] -%}
        {{ return("TimescaleDB is not installed in this database") }}
    {%- elif not caps["community"] -%}
        {{ return("needs TimescaleDB Community edition (license " ~ caps["license"] ~ ")") }}
    {%- endif -%}
    {{ return(none) }}
{% endmacro %}
