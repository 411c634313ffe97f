{#- run-operation for `setu maintain`: every relation with a retention setting, printed as
    one line "setu-retention-targets: [json]" of {schema, identifier, time_column, drop_after,
    kind (interval | bigint), origin}: the enabled models with config retention_policy, and
    the Bronze tables (var setu_bronze_retention, time column "time"). -#}
{% macro setu_retention_targets() %}
    {%- set targets = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == "model" -%}
        {%- set retention = node.config.get("retention_policy") -%}
        {%- if retention is mapping -%}
            {%- set label = node.schema ~ "." ~ (node.alias or node.name) -%}
            {%- set drop_after = setu_interval(retention.get("drop_after"), label,
                                               "retention_policy.drop_after") -%}
            {%- do targets.append({"schema": node.schema, "identifier": node.alias or node.name,
                "time_column": node.config.get("time_column_name"),
                "drop_after": drop_after["text"], "kind": drop_after["kind"],
                "origin": node.unique_id}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set bronze_retention = var("setu_bronze_retention", none) -%}
    {%- if bronze_retention -%}
        {%- set drop_after = setu_interval(bronze_retention, "bronze", "var setu_bronze_retention") -%}
        {%- for name in bronze_table_specs() -%}
            {%- do targets.append({"schema": "bronze", "identifier": name, "time_column": "time",
                "drop_after": drop_after["text"], "kind": drop_after["kind"],
                "origin": "var setu_bronze_retention"}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ log("setu-retention-targets: " ~ tojson(targets), info=true) }}
{% endmacro %}
