{#- run-operation entry point for `setu bronze`: applies create_bronze_tables()
    (run_query in an operation commits; the statements run as one implicit transaction). -#}
{% macro setup_bronze() %}
    {% do run_query(create_bronze_tables()) %}
    {{ log("bronze and master tables are up to date", info=true) }}
{% endmacro %}
