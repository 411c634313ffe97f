{#- The batch engine shared by dbt and the in-database jobs. dbt's watermark_incremental
    materialization registers each model's compiled SQL in _etl.models; take_horizon() and
    apply_batch() then run it, so a job and `dbt build` execute the very same statements.

    Why the sweep is exact while writers commit out of id order, without making them wait:
    identity values are taken at insert, not at commit, so a plain max(id) can pass over a
    row whose transaction is still open. source_horizon() reads the identity sequence's last
    value L, then lists the transactions holding ROW EXCLUSIVE on the source (every writer
    takes it before it draws an id, and drops it only after its commit is visible). Any id
    at or below L was drawn before L was read, so its transaction has ended or is on that
    list. L becomes the horizon once the listed transactions have ended; until then it is
    remembered as pending (pending_id, pending_writers) and the previous horizon stays in
    force, so nobody waits. pg_current_snapshot()'s in-progress list would not do: a
    transaction gets its xid only at its first heap write, after it has drawn ids (a COPY
    buffers up to 1,000 rows first), so a snapshot can miss a writer that holds ids.
    A source without a sequence of its own (Silver's etl_batch_id, drawn from
    _etl.silver_change_seq) is written by one model only, batch after batch under that
    model's advisory lock, so its ids commit in order and the committed max(id) is exact.

    Both functions take the model's advisory lock: a horizon taken by one runner (a job)
    while another runner's (dbt's) batch is in flight would otherwise move batch_end_id under
    that batch, whose final watermark update would then mark the larger range as processed
    and skip the rows between the two horizons.

    run_limits() reads each source's last id when a run starts: the run stops there, so a
    run ends however fast writers add rows; later rows are the next run's. -#}
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

    create or replace function _etl.source_last_id(p_source text, p_id_column text)
    returns bigint
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
    declare
        v_sequence text := pg_get_serial_sequence(p_source, p_id_column);
        v_last bigint;
    begin
        if v_sequence is null then
            execute format('select max(%I) from %s', p_id_column, p_source::regclass)
                into v_last;
        else
            v_last := pg_sequence_last_value(v_sequence::regclass);
        end if;
        return coalesce(v_last, 0);
    end;
    $fn$;

    create or replace function _etl.run_limits(p_model text) returns bigint []
    language sql
    stable
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
        select array_agg(_etl.source_last_id(s.source_name, s.id_column) order by s.position)
        from _etl.models as m
        cross join lateral unnest(m.sources, m.id_columns)
            with ordinality as s (source_name, id_column, position)
        where m.model_name = p_model
    $fn$;

    create or replace function _etl.source_horizon(
        p_model text, p_source text, p_id_column text
    ) returns bigint
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
    declare
        v_mark _etl.watermarks;
        v_last bigint;
        v_writers text [];
    begin
        select * into strict v_mark from _etl.watermarks
        where model_name = p_model and source_name = p_source
        for update;
        if pg_get_serial_sequence(p_source, p_id_column) is null then
            v_mark.horizon_id := greatest(v_mark.horizon_id,
                _etl.source_last_id(p_source, p_id_column));
        else
            if v_mark.pending_id is not null and not exists (
                select from pg_locks as l
                where l.locktype = 'relation'
                    and l.relation = p_source::regclass
                    and l.mode = 'RowExclusiveLock'
                    and l.virtualtransaction = any(v_mark.pending_writers)
            ) then
                v_mark.horizon_id := greatest(v_mark.horizon_id, v_mark.pending_id);
                v_mark.pending_id := null;
            end if;
            if v_mark.pending_id is null then
                -- The order matters: the last value first, then the writers in flight.
                v_last := _etl.source_last_id(p_source, p_id_column);
                select coalesce(array_agg(distinct l.virtualtransaction), '{}')
                into v_writers
                from pg_locks as l
                where l.locktype = 'relation'
                    and l.database = (
                        select d.oid from pg_database as d where d.datname = current_database()
                    )
                    and l.relation = p_source::regclass
                    and l.mode = 'RowExclusiveLock'
                    and l.granted
                    and l.pid is distinct from pg_backend_pid();
                if cardinality(v_writers) = 0 then
                    v_mark.horizon_id := greatest(v_mark.horizon_id, v_last);
                elsif v_last > v_mark.horizon_id then
                    v_mark.pending_id := v_last;
                end if;
            end if;
        end if;
        update _etl.watermarks
        set horizon_id = v_mark.horizon_id,
            pending_id = v_mark.pending_id,
            pending_writers = case when v_mark.pending_id is null then null else
                coalesce(v_writers, pending_writers) end
        where model_name = p_model and source_name = p_source;
        return v_mark.horizon_id;
    end;
    $fn$;

    {#- The one-argument version had no run limits; callers now pass them (or null). -#}
    drop function if exists _etl.take_horizon(text);
    create or replace function _etl.take_horizon(
        p_model text, p_limits bigint [] default null
    ) returns boolean
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
    declare
        v_model _etl.models;
        v_source text;
        v_id_column text;
        v_limit bigint;
        v_horizon bigint;
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
        for v_source, v_id_column, v_limit in
            select s.source_name, s.id_column, s.run_limit
            from unnest(v_model.sources, v_model.id_columns, p_limits)
                as s (source_name, id_column, run_limit)
            where s.source_name is not null
        loop
            v_horizon := _etl.source_horizon(p_model, v_source, v_id_column);
            update _etl.watermarks as w
            set batch_end_id = greatest(w.last_processed_id, least(
                v_horizon, w.last_processed_id + v_model.batch_size, coalesce(v_limit, v_horizon)
            ))
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
        perform set_config('setu.batch_model', p_model, true);
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

    {{ create_retention_guard() }}
{% endmacro %}
