{#- ensured_table: a table whose rows other models write (the quarantine, the cycle state
    cache, devices created on first sight). Created from the model's SQL when missing, new
    columns added; never dropped or truncated, not even on --full-refresh, because its rows
    belong to the models that write them (they clear their own rows when they rebuild). -#}
{% materialization ensured_table, adapter="postgres" %}
    {%- do validate_model_config() -%}
    {%- set target_relation = this.incorporate(type="table") -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set unique_key = config.get("unique_key") or [] -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- if existing_relation is none %}
        {% call statement("main") -%}
            create table {{ target_relation }} as ({{ sql }}) with no data;
            {%- if unique_key %}
            alter table {{ target_relation }} add primary key ({{ unique_key | join(", ") }});
            {%- endif %}
        {%- endcall %}
    {%- else %}
        {%- set tmp_relation = make_temp_relation(target_relation) -%}
        {% call statement("shape") -%}
            create temporary table {{ tmp_relation }} as ({{ sql }}) with no data
        {%- endcall %}
        {%- set missing = adapter.get_missing_columns(tmp_relation, target_relation) -%}
        {% call statement("main") -%}
            {%- for column in missing %}
            alter table {{ target_relation }} add column if not exists {{ adapter.quote(column.name) }} {{ column.data_type }};
            {%- endfor %}
            drop table {{ tmp_relation }}
        {%- endcall %}
    {%- endif %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
