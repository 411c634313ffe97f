{#- The batch engine shared by dbt and the in-database jobs. dbt's watermark_incremental
    materialization registers each model's compiled SQL in _etl.models; take_horizon() and
    apply_batch() then run it, so a job and `dbt build` execute the very same statements.

    Why the sweep is exact while writers commit out of id order: identity values are taken
    at insert, not at commit, so a plain max(id) can pass over a row whose transaction is
    still open. take_horizon() locks each source in SHARE mode, which waits for every writer
    in flight (writers hold ROW EXCLUSIVE until commit) and holds new ones back for the
    instant of max(id). Every id at or below that horizon is then committed or rolled back,
    so no row at or below it can become visible later. The lock is released by the commit
    that follows immediately; the batch itself runs in a second transaction.

    Both functions take the model's advisory lock: a horizon taken by one runner (a job)
    while another runner's (dbt's) batch is in flight would otherwise move batch_end_id under
    that batch, whose final watermark update would then mark the larger range as processed
    and skip the rows between the two horizons. -#}
{% macro create_etl_functions() %}
    create table if not exists _etl.models (
        model_name text primary key,
        target_relation text not null,
        sources text [] not null,
        id_columns text [] not null,
        batch_size bigint not null,
        batch_sql text not null,
        apply_sql text [] not null,
        time_column text,
        run_order int not null default 0,
        updated_at timestamptz not null default now()
    );

    create or replace function _etl.take_horizon(p_model text) returns boolean
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
    declare
        v_model _etl.models;
        v_source text;
        v_id_column text;
        v_max bigint;
        v_has_work boolean := false;
        v_source_has_work boolean;
    begin
        -- Waits for a batch of this model in flight (see above) before moving its horizon.
        perform pg_advisory_xact_lock(hashtextextended('setu.model:' || p_model, 0));
        select * into v_model from _etl.models where model_name = p_model;
        if not found then
            raise exception 'setu: model % is not registered in _etl.models', p_model
                using hint = 'run `setu build` once so dbt registers its compiled SQL';
        end if;
        for v_source, v_id_column in
            select s.source_name, s.id_column
            from unnest(v_model.sources, v_model.id_columns) as s (source_name, id_column)
        loop
            execute format('lock table %s in share mode', v_source::regclass);
            execute format('select max(%I) from %s', v_id_column, v_source::regclass)
                into v_max;
            update _etl.watermarks as w
            set batch_end_id = least(coalesce(v_max, 0), w.last_processed_id + v_model.batch_size)
            where w.model_name = p_model and w.source_name = v_source
            returning w.batch_end_id > w.last_processed_id into v_source_has_work;
            v_has_work := v_has_work or coalesce(v_source_has_work, false);
        end loop;
        return v_has_work;
    end;
    $fn$;

    create or replace function _etl.apply_batch(p_model text) returns bigint
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
    as $fn$
    declare
        v_model _etl.models;
        v_statement text;
        v_rows bigint;
        v_max_time timestamptz;
    begin
        -- One batch of a model at a time, whoever runs it (dbt or a job).
        perform pg_advisory_xact_lock(hashtextextended('setu.model:' || p_model, 0));
        select * into v_model from _etl.models where model_name = p_model;
        if not exists (
            select from _etl.watermarks
            where model_name = p_model and batch_end_id > last_processed_id
        ) then
            return 0;
        end if;
        perform set_config('setu.etl_batch_id', nextval('_etl.silver_change_seq')::text, true);
        if to_regclass('pg_temp._etl_batch') is not null then
            drop table pg_temp._etl_batch;
        end if;
        execute 'create temp table _etl_batch on commit drop as ' || v_model.batch_sql;
        get diagnostics v_rows = row_count;
        analyze pg_temp._etl_batch;
        foreach v_statement in array v_model.apply_sql loop
            execute v_statement;
        end loop;
        if v_model.time_column is not null then
            execute format('select max(%I) from pg_temp._etl_batch', v_model.time_column)
                into v_max_time;
        end if;
        update _etl.watermarks
        set last_processed_id = batch_end_id,
            last_processed_ts = coalesce(v_max_time, last_processed_ts),
            rows_processed = rows_processed + v_rows,
            updated_at = now()
        where model_name = p_model and batch_end_id > last_processed_id;
        return v_rows;
    end;
    $fn$;
{% endmacro %}
