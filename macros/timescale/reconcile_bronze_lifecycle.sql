{#- Compression and retention of the Bronze hypertables (created by create_bronze_tables),
    through the same lifecycle macros as the models: compression after var
    setu_bronze_compress_after, segmentby the table's entity (machine_id / device_id),
    orderby time desc; retention after var setu_bronze_retention (on Community the guarded
    job _etl.guarded_retention_job, not a policy: it keeps chunks holding rows Silver has not
    processed; `setu maintain` elsewhere, with the same guard). One log line per table. Meant for on-run-start after
    create_bronze_tables(); runs its statements itself and returns "". -#}
{% macro reconcile_bronze_lifecycle() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set caps = get_capabilities() -%}
    {%- for name, spec in bronze_table_specs().items() -%}
        {%- set relation = api.Relation.create(database=target.database, schema="bronze",
                                               identifier=name, type="table") -%}
        {%- do setu_reconcile_lifecycle(relation, settings={
            "time_column_name": "time",
            "compression": {
                "segmentby": [spec["entity_column"]],
                "orderby": "time desc",
                "after": var("setu_bronze_compress_after"),
            },
            "retention_policy": {"drop_after": var("setu_bronze_retention")},
            "retention_guarded": true,
        }, caps=caps) -%}
    {%- endfor -%}
    {{ return("") }}
{% endmacro %}
