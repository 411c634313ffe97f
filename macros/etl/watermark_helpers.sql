{#- Normalises the watermark_sources config to [{relation, id_column}]. -#}
{% macro watermark_source_specs(configured) %}
    {%- set specs = [] -%}
    {%- for item in configured -%}
        {%- if item is string -%}
            {%- do specs.append({"relation": item, "id_column": "id"}) -%}
        {%- elif item is mapping and "relation" in item -%}
            {%- do specs.append({"relation": item["relation"],
                                 "id_column": item.get("id_column", "id")}) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error(
                "model " ~ this ~ ": each watermark_sources entry is 'schema.table' or "
                ~ "{relation: schema.table, id_column: name}; got " ~ item) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(specs) }}
{% endmacro %}

{#- Unique index on the key (plus the time column, which a hypertable's unique indexes
    must include), an etl_batch_id index for Gold's sweep, and the model's `indexes`. -#}
{% macro create_target_indexes(relation, unique_key, time_column) %}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute="name") | list -%}
    {% call statement("create_target_indexes") -%}
        {%- if unique_key %}
            {%- set key_columns = unique_key + ([time_column] if time_column and time_column not in unique_key else []) %}
        create unique index if not exists {{ adapter.quote(relation.identifier ~ "_key") }}
            on {{ relation }} ({{ key_columns | join(", ") }});
        {%- endif %}
        {%- if "etl_batch_id" in columns %}
        create index if not exists {{ adapter.quote(relation.identifier ~ "_etl_batch_id_idx") }}
            on {{ relation }} (etl_batch_id);
        {%- endif %}
        select 1
    {%- endcall %}
    {%- for index_config in config.get("indexes", []) %}
        {% call statement("create_index_" ~ loop.index) -%}
            {{ get_create_index_sql(relation, index_config) }}
        {%- endcall %}
    {%- endfor %}
{% endmacro %}

{#- The statements that apply one batch (temp table _etl_batch) to the target, run by
    _etl.apply_batch() in the batch's transaction. -#}
{% macro watermark_apply_statements(relation, unique_key, quarantine_table, after_batch) %}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute="name") | list -%}
    {%- set column_list = columns | join(", ") -%}
    {%- set accepted = "where quarantine_reason is null" if quarantine_table else "" -%}
    {%- set statements = [] -%}
    {%- if quarantine_table -%}
        {%- do statements.append(quarantine_insert_sql(quarantine_table)) -%}
    {%- endif -%}
    {%- if unique_key -%}
        {%- set null_safe_keys = config.get("null_safe_keys", []) -%}
        {%- set matches = [] -%}
        {%- for key in unique_key -%}
            {%- set operator = " is not distinct from " if key in null_safe_keys else " = " -%}
            {%- do matches.append("t." ~ key ~ operator ~ "b." ~ key) -%}
        {%- endfor -%}
        {%- do statements.append("delete from " ~ relation ~ " as t using pg_temp._etl_batch as b where "
            ~ matches | join(" and ")) -%}
    {%- endif -%}
    {%- do statements.append("insert into " ~ relation ~ " (" ~ column_list ~ ") select "
        ~ column_list ~ " from pg_temp._etl_batch " ~ accepted) -%}
    {%- for macro_name in after_batch -%}
        {%- do statements.append(context[macro_name]() | trim) -%}
    {%- endfor -%}
    {{ return(statements) }}
{% endmacro %}

{#- A model that reads its own rows (late events correct their neighbours) cannot be created
    from its SQL before it exists: such models declare every column with a data_type in
    their YAML, and the table is created from that declaration. Others are created from
    the shape of their SQL. The batch-only column quarantine_reason never reaches a table. -#}
{% macro create_watermark_target_sql(relation, sql) %}
    {%- set declared = model.columns.values() | list -%}
    {%- if declared and declared | selectattr("data_type") | list | length == declared | length %}
    create table {{ relation }} (
        {%- for column in declared %}
        {{ adapter.quote(column.name) }} {{ column.data_type }}{{ "," if not loop.last }}
        {%- endfor %}
    );
    {%- else %}
    create table {{ relation }} as ({{ sql }}) with no data;
    alter table {{ relation }} drop column if exists quarantine_reason;
    {%- endif %}
{% endmacro %}

{#- Calls one of the _etl batch functions in a transaction of its own and commits it;
    returns the function's value. extra_argument_sql: a second argument, as SQL. -#}
{% macro call_etl_function(function_name, model_name, extra_argument_sql=none) %}
    {% call statement("etl_" ~ function_name, fetch_result=true, auto_begin=true) -%}
        select _etl.{{ function_name }}(
            {{ sql_literal(model_name) }}{{ ", " ~ extra_argument_sql if extra_argument_sql }}
        ) as result
    {%- endcall %}
    {%- set value = load_result("etl_" ~ function_name)["data"][0][0] -%}
    {% do adapter.commit() %}
    {{ return(value) }}
{% endmacro %}

{#- The node's depth in the dbt DAG (longest path from a source): the in-database job runs
    models in this order, so a model runs after everything it reads. -#}
{% macro dag_depth(unique_id) %}
    {%- set node = graph.nodes.get(unique_id) -%}
    {%- if node is none -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set deepest = namespace(value=0) -%}
    {%- for parent_id in node.depends_on.nodes -%}
        {%- set parent_depth = dag_depth(parent_id) | int -%}
        {%- if parent_depth + 1 > deepest.value -%}
            {%- set deepest.value = parent_depth + 1 -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(deepest.value) }}
{% endmacro %}
