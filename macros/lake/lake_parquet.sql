{#- The Parquet that `setu export` wrote for one warehouse table, every plant of it, as a Spark
    relation: Spark's built-in reader discovers the plant=/<date>= folders as columns and skips
    the _setu_manifests and _setu_staging folders (names starting with "_" are hidden). -#}
{% macro lake_parquet(schema_name, table_name) -%}
    {%- set root = var("setu_lake", env_var("SETU_LAKE", "")) | string -%}
    {%- if not root and execute -%}
        {{ exceptions.raise_compiler_error(
            "the lake models read the Parquet of `setu export`: set SETU_LAKE to its folder") }}
    {%- endif -%}
    parquet.`{{ root.rstrip("/") }}/{{ schema_name }}/{{ table_name }}`
{%- endmacro %}
