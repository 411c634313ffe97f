{#- A segmentby/orderby text reduced for comparison with what the server shows: lowercase,
    no quotes or spaces, default orderings dropped ("asc", "desc nulls first", "nulls last"
    after asc). -#}
{% macro setu_normalize_column_list(text) %}
    {%- set items = [] -%}
    {%- for item in ((text or "") | lower | replace('"', "")).split(",") if item | trim -%}
        {%- set words = " ".join(item.split()) -%}
        {%- set words = words.replace("desc nulls first", "desc").replace(" asc", "") -%}
        {%- if not words.endswith("desc nulls last") -%}
            {%- set words = words.replace(" nulls last", "") -%}
        {%- endif -%}
        {%- do items.append(words.replace(" ", "")) -%}
    {%- endfor -%}
    {{ return(items | join(",")) }}
{% endmacro %}
