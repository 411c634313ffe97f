{#- The replica publication's name and the schemas it holds (vars setu_replica_publication,
    setu_replica_schemas). Only plain tables replicate: a hypertable's rows live in its
    chunks, outside these schemas, so Gold, master and webapp relations stay plain tables. -#}
{% macro replica_publication_name() %}
    {{ return(var("setu_replica_publication", "setu_replica")) }}
{% endmacro %}

{% macro replica_schemas() %}
    {{ return(var("setu_replica_schemas", ["gold", "master", "webapp"])) }}
{% endmacro %}
