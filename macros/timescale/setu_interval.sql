{#- Validates one interval from model config and returns it as SQL:
    {"sql": "interval '7 days'" | "100000", "kind": "interval" | "bigint", "text": "7 days"}.
    A string must read as PostgreSQL interval units ("7 days", "1 day 12 hours", "90 min");
    a whole number is for integer time columns. Anything else is one compiler error that
    names the relation and the config key. none stays none when allow_none. -#}
{% macro setu_interval(value, label, key, allow_none=false) %}
    {%- if value is none and allow_none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set units = "microseconds?|us|milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m"
        ~ "|hours?|hrs?|h|days?|d|weeks?|w|months?|mons?|years?|yrs?|y" -%}
    {%- set interval_re = "^\\s*(\\d+(\\.\\d+)?\\s*(" ~ units ~ ")\\s*)+$" -%}
    {%- if value is boolean or value is none -%}
        {%- set ok = false -%}
    {%- elif value is number and (value | int) == value and value > 0 -%}
        {{ return({"sql": (value | int) ~ "::bigint", "kind": "bigint", "text": value | int | string}) }}
    {%- elif value is string and modules.re.match("^\\s*\\d+\\s*$", value) -%}
        {{ return({"sql": (value | int) ~ "::bigint", "kind": "bigint", "text": value | trim}) }}
    {%- elif value is string and modules.re.match(interval_re, value, modules.re.IGNORECASE) -%}
        {%- set text = value | trim | lower -%}
        {{ return({"sql": "interval " ~ sql_literal(text), "kind": "interval", "text": text}) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(
        "setu: " ~ label ~ ": config " ~ key ~ " = " ~ (value | tojson)
        ~ " is not a valid interval; write e.g. '7 days', '12 hours', '1 day 6 hours'"
        ~ " (or a positive whole number for an integer time column)") }}
{% endmacro %}
