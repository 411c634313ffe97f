{#- The CREATE statement of a continuous aggregate, always WITH NO DATA (WITH DATA cannot
    run inside the transaction dbt runs a model in). materialized_only and
    create_group_indexes are written out whenever configured, false included. Pure. -#}
{% macro setu_continuous_aggregate_sql(relation, sql, settings) %}
    {%- set options = ["timescaledb.continuous"] -%}
    {%- for key in ["materialized_only", "create_group_indexes"] -%}
        {%- set value = settings.get(key) -%}
        {%- if value is not none and value is not boolean -%}
            {{ exceptions.raise_compiler_error("setu: " ~ setu_relation_label(relation)
                ~ ": config " ~ key ~ " must be true or false, not " ~ (value | tojson)) }}
        {%- endif -%}
        {%- do options.append("timescaledb." ~ key ~ " = " ~ (value | string | lower))
            if value is not none -%}
    {%- endfor -%}
    {{ return("create materialized view " ~ relation.include(database=false)
        ~ " with (" ~ options | join(", ") ~ ") as\n" ~ sql ~ "\nwith no data") }}
{% endmacro %}
