{#- Whether an extension version string ("2.19.3") is at least minimum ("2.18.0"). -#}
{% macro setu_version_at_least(version, minimum) %}
    {%- if version is none -%}{{ return(false) }}{%- endif -%}
    {%- set ns = namespace(have=[], want=[]) -%}
    {%- for part in (version | string).split("-")[0].split(".") -%}
        {%- set ns.have = ns.have + [part | int] -%}
    {%- endfor -%}
    {%- for part in (minimum | string).split(".") -%}
        {%- set ns.want = ns.want + [part | int] -%}
    {%- endfor -%}
    {{ return(ns.have >= ns.want) }}
{% endmacro %}
