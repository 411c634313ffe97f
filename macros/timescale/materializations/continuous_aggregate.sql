{#- materialized='continuous_aggregate': a TimescaleDB continuous aggregate where the server
    has them (Community edition), the same relation as an incremental table elsewhere
    (setu_build_aggregate_table). Config: refresh_policy, materialized_only,
    create_group_indexes, create_with_data, indexes, time_column_name (the bucket column,
    for the fallback), plus the lifecycle keys of setu_reconcile_lifecycle (post-hook).
    A changed SQL is detected by a definition hash (_etl.relation_definitions) and rebuilt;
    the hash includes the build kind, so a server that gains or loses continuous
    aggregates rebuilds too. Prints ONE log line for the build. A run holds the model's
    advisory lock ('setu.model:' || identifier, as _etl.apply_batch) until it commits, so
    concurrent runs of a rollup take turns. -#}
{% materialization continuous_aggregate, default %}
    {%- do validate_model_config() -%}
    {%- set caps = get_capabilities() -%}
    {%- set settings = setu_timescale_config() -%}
    {%- set kind = "continuous_aggregate" if caps["community"] else "table" -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set grant_config = config.get("grants") -%}
    {%- set definition_hash = local_md5(kind ~ "|" ~ (settings.get("create_group_indexes") | string)
                                        ~ "|" ~ sql | trim) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {#- The model's advisory lock (the watermark models' key) before anything else in its
        transaction: two runs at once would otherwise each hold row locks on the buckets
        they delete while one waits for the other's share lock to check the indexes, a
        deadlock; serialised, the second run recomputes after the first has committed. -#}
    {% call statement("setu_model_lock") -%}
        select pg_advisory_xact_lock(hashtextextended({{ sql_literal("setu.model:"
            ~ this.identifier) }}, 0))
    {%- endcall %}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set is_cagg = caps["timescaledb"] and setu_timescale_target(this) == "cagg" -%}
    {%- set stored_hash = setu_definition_hash(this) if existing is not none else none -%}
    {%- if existing is none -%}
        {%- set rebuild = "created" -%}
    {%- elif should_full_refresh() -%}
        {%- set rebuild = "rebuilt (--full-refresh)" -%}
    {%- elif stored_hash != definition_hash -%}
        {%- set rebuild = "rebuilt: its definition changed (hash " ~ (stored_hash or "none")[:8]
            ~ " -> " ~ definition_hash[:8] ~ ")" -%}
    {%- elif caps["community"] and not is_cagg -%}
        {%- set rebuild = "rebuilt: the relation was not a continuous aggregate" -%}
    {%- else -%}
        {%- set rebuild = none -%}
    {%- endif -%}

    {%- if caps["community"] -%}
        {%- set target_relation = this.incorporate(type="view") -%}
        {%- set parts = setu_build_continuous_aggregate(this, existing, sql, settings, caps,
                                                         is_cagg, rebuild) -%}
    {%- else -%}
        {%- set target_relation = this.incorporate(type="table") -%}
        {%- set parts = setu_build_aggregate_table(this, existing, sql, settings, caps,
                                                    is_cagg, rebuild) -%}
    {%- endif -%}
    {%- do setu_record_definition_hash(this, kind, definition_hash) -%}
    {%- do setu_log(this, parts | join("; ")) -%}

    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {%- set should_revoke = should_revoke(existing, full_refresh_mode=rebuild is not none) -%}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) -%}
    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
