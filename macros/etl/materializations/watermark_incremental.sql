{#- watermark_incremental: SETU's incremental materialization, keyed on a Bronze (or Silver)
    id watermark instead of max(time) or max(id) of the target.

    First build and --full-refresh: (re)create the table (a hypertable when
    time_column_name is set), forget the model's watermarks and run its on_reset macros.
    Every run: register the compiled SQL and the statements that apply a batch in
    _etl.models, then consume the backlog that existed when the model's run started (its
    sources' last ids, _etl.run_limits()) in bounded batches, each in two transactions:
    _etl.take_horizon() (exact horizon, see create_etl_functions) and _etl.apply_batch()
    (rows, quarantine, state caches and watermark together). An ordinary run never drops
    the table.

    Config: watermark_sources (list of "schema.table" or {relation, id_column}),
    unique_key (rows replaced by key, for facts that late events correct; keys listed in
    null_safe_keys match nulls too),
    quarantine_source_table (Bronze table whose rejected rows go to silver.quarantine),
    after_batch / on_reset (names of macros returning SQL run in the batch / on reset),
    time_column_name, watermark_batch_size (default var setu_batch_size). The in-database job runs
    models in DAG order (dag_depth). -#}
{% materialization watermark_incremental, adapter="postgres" %}
    {%- do validate_model_config() -%}
    {%- set target_relation = this.incorporate(type="table") -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set full_refresh = should_full_refresh() -%}
    {%- set sources = watermark_source_specs(config.require("watermark_sources")) -%}
    {%- set unique_key = config.get("unique_key") or [] -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {%- set time_column = config.get("time_column_name") -%}
    {%- set batch_size = config.get("watermark_batch_size") or var("setu_batch_size") -%}
    {%- set quarantine_table = config.get("quarantine_source_table") -%}
    {%- set model_name = this.identifier -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is none or full_refresh or existing_relation.type != "table" %}
        {%- if existing_relation is not none %}
            {{ log("setu: " ~ this.schema ~ "." ~ this.identifier ~ ": full refresh, rebuilding from its sources", info=true) }}
            {#- A drop is not replicated; a truncate is, so read replicas empty their copy. -#}
            {{ truncate_published_table(existing_relation) }}
            {% do adapter.drop_relation(existing_relation) %}
        {%- endif %}
        {% call statement("create_target") -%}
            {{ create_watermark_target_sql(target_relation, sql) }}
        {%- endcall %}
        {{ create_target_indexes(target_relation, unique_key, time_column) }}
        {{ set_replica_identity(target_relation) }}

        {% call statement("reset_watermarks") -%}
            delete from _etl.watermarks where model_name = {{ sql_literal(model_name) }};
            {%- if quarantine_table %}
            delete from silver.quarantine
            where source_table = {{ sql_literal(quarantine_table) }};
            {%- endif %}
            {%- for macro_name in config.get("on_reset", []) %}
            {{ context[macro_name]() }};
            {%- endfor %}
        {%- endcall %}
    {%- endif %}

    {#- On every run, not only at creation: a chunk interval or dimension changed in config
        is applied on the next ordinary run. -#}
    {%- if time_column %}
        {{ setu_ensure_hypertable(target_relation) }}
    {%- endif %}

    {%- set apply_statements = watermark_apply_statements(
        target_relation, unique_key, quarantine_table, config.get("after_batch", [])) -%}
    {% call statement("register_model") -%}
        insert into _etl.models as m (
            model_name, target_relation, sources, id_columns, batch_size, batch_sql,
            apply_sql, time_column, run_order, updated_at
        )
        values (
            {{ sql_literal(model_name) }},
            {{ sql_literal(target_relation | string) }},
            array[{% for s in sources %}{{ sql_literal(s.relation) }}{{ "," if not loop.last }}{% endfor %}]::text [],
            array[{% for s in sources %}{{ sql_literal(s.id_column) }}{{ "," if not loop.last }}{% endfor %}]::text [],
            {{ batch_size | int }},
            {{ sql_literal(sql) }},
            array[{% for s in apply_statements %}{{ sql_literal(s) }}{{ "," if not loop.last }}{% endfor %}]::text [],
            {{ sql_literal(time_column) if time_column else "null" }},
            {{ dag_depth(model.unique_id) | int }},
            now()
        )
        on conflict (model_name) do update
        set target_relation = excluded.target_relation,
            sources = excluded.sources,
            id_columns = excluded.id_columns,
            batch_size = excluded.batch_size,
            batch_sql = excluded.batch_sql,
            apply_sql = excluded.apply_sql,
            time_column = excluded.time_column,
            run_order = excluded.run_order,
            updated_at = excluded.updated_at;
        insert into _etl.watermarks (model_name, source_name)
        select {{ sql_literal(model_name) }}, source_name
        from unnest(array[{% for s in sources %}{{ sql_literal(s.relation) }}{{ "," if not loop.last }}{% endfor %}]::text []) as source_name
        on conflict do nothing;
    {%- endcall %}
    {% do adapter.commit() %}

    {#- The backlog that exists now is this run's; rows written while it runs are the next
        run's, so a run ends however fast writers add rows. -#}
    {% call statement("etl_run_limits", fetch_result=true, auto_begin=true) -%}
        select array_to_string(_etl.run_limits({{ sql_literal(model_name) }}), ',') as limits
    {%- endcall %}
    {% do adapter.commit() %}
    {%- set limits = load_result("etl_run_limits")["data"][0][0] -%}
    {%- set limits_sql = "array[" ~ limits ~ "]::bigint []" -%}
    {%- set totals = namespace(rows=0, batches=0, done=false) -%}
    {%- for _ in range(config.get("max_batches_per_run", 10000) | int) if not totals.done %}
        {%- set has_work = call_etl_function("take_horizon", model_name, limits_sql) -%}
        {%- if not has_work %}
            {%- set totals.done = true -%}
        {%- else %}
            {%- set totals.rows = totals.rows + call_etl_function("apply_batch", model_name) -%}
            {%- set totals.batches = totals.batches + 1 -%}
        {%- endif %}
    {%- endfor %}

    {% call statement("main") -%}
        select {{ totals.rows }} as rows_processed
    {%- endcall %}
    {{ log("setu: " ~ this.schema ~ "." ~ this.identifier ~ ": " ~ totals.rows ~ " rows in "
        ~ totals.batches ~ " batch(es) up to id(s) " ~ limits, info=true) }}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
