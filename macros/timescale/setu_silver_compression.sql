{#- The compression a Silver fact gets when its config has no `compression` key: after var
    setu_silver_compress_after, segmented by the fact's entity (machine_id, else device_id),
    ordered by its time column, newest first. none without a time column or the var (a
    project of its own that does not set it). column_names: the fact's columns. -#}
{% macro setu_silver_compression(time_column, column_names) %}
    {%- set after = var("setu_silver_compress_after", none) -%}
    {%- if after is none or not time_column -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set compression = {"orderby": time_column ~ " desc", "after": after} -%}
    {%- for entity in ["machine_id", "device_id"] if entity in column_names -%}
        {%- if loop.first -%}
            {%- do compression.update({"segmentby": [entity]}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(compression) }}
{% endmacro %}
