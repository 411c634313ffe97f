{#- Everything the models and the loaders need before a run, created or evolved idempotently
    in one transaction under an advisory lock (concurrent runs wait instead of racing):
    master and Bronze tables, the loaders' ledgers, the batch engine and the shift function.
    on-run-start renders it; `setu bronze` runs it through the run-operation below. -#}
{% macro setup_warehouse_ddl() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- do validate_setu_vars() -%}
    select pg_advisory_xact_lock(hashtext('setu.setup_warehouse'));
    {{ master_table_ddl() }}
    {{ create_bronze_tables() }}
    {{ create_ingest_ledger() }}
    {{ create_provisioning_tables() }}
    {{ create_edge_ledger() }}
    {{ create_etl_control_plane() }}
    {{ create_etl_functions() }}
    {{ create_pipeline_procedure() }}
    {{ create_source_lag_function() }}
    {{ create_shift_function() }}
{% endmacro %}

{#- run-operation entry point of `setu bronze` and `setu demo` (run_query in an operation
    commits; the statements run as one implicit transaction). -#}
{% macro setup_warehouse() %}
    {% do run_query(setup_warehouse_ddl()) %}
    {{ log("master, Bronze, ledgers and the batch engine are up to date", info=true) }}
{% endmacro %}
