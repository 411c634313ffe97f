{#- Validates a segmentby / orderby config value (a string "a, b" or a list) and returns it
    as the comma-separated text TimescaleDB takes: lowercase column names, for orderby each
    optionally followed by asc|desc and nulls first|last. Else one compiler error. -#}
{% macro setu_column_list(value, label, key, with_order=false) %}
    {%- set items = value if value is sequence and value is not string else (value | string).split(",") -%}
    {%- set pattern = "^[a-z_][a-z0-9_$]*"
        ~ ("( (asc|desc))?( nulls (first|last))?" if with_order else "") ~ "$" -%}
    {%- set cleaned = [] -%}
    {%- for item in items -%}
        {%- set text = " ".join((item | string | lower).split()) -%}
        {%- if not modules.re.match(pattern, text) -%}
            {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config " ~ key ~ " = "
                ~ (value | tojson) ~ " is not a list of column names"
                ~ (" with an optional asc|desc" if with_order else "")) }}
        {%- endif -%}
        {%- do cleaned.append(text) -%}
    {%- endfor -%}
    {{ return(cleaned | join(", ")) }}
{% endmacro %}
