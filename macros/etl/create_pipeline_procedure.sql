{#- _etl.run_pipeline(): the in-database job. It runs the registered models (compiled by the
    last dbt run into _etl.models) in layer order, each up to the backlog that existed when
    the model's turn came (_etl.run_limits), batch by batch, through the same
    take_horizon()/apply_batch() functions dbt's materialization calls, committing after
    each step. A model whose advisory lock another runner holds (`dbt build`, or the job of
    another branch) is skipped for this round instead of waited for; the engine's per-model
    lock and its re-check of the watermark still mean no batch is applied twice.

    p_branch: run only the models reachable from that root model (see pipeline_branches),
    so one scheduled job per independent branch of the DAG runs them in parallel.

    Each run is logged in _etl.job_runs with its backend's pid; a run whose backend has gone
    without finishing it (killed, server crash) is marked 'interrupted' by the next run. -#}
{% macro create_pipeline_procedure() %}
    create table if not exists _etl.job_runs (
        run_id bigint generated always as identity primary key,
        runner text not null,
        started_at timestamptz not null default clock_timestamp(),
        finished_at timestamptz,
        status text not null default 'running',
        batches int not null default 0,
        rows_processed bigint not null default 0,
        error text
    );
    alter table _etl.job_runs add column if not exists pid int;
    alter table _etl.job_runs add column if not exists branch text;
    alter table _etl.job_runs add column if not exists skipped text [];

    {#- Roots are models that read no other model; a branch is its root and every model
        downstream of it. A model downstream of two roots is in both branches. -#}
    create or replace function _etl.pipeline_branches()
    returns table (branch text, model_name text, run_order int)
    language sql
    stable
    as $fn$
        with recursive edges as (
            select
                parent.model_name as parent_name,
                child.model_name as child_name
            from _etl.models as parent
            inner join _etl.models as child
                on
                    parent.model_name <> child.model_name
                    and to_regclass(parent.target_relation) in (
                        select to_regclass(s.source_name)
                        from unnest(child.sources) as s (source_name)
                    )
        ),

        reach (branch, model_name) as (
            select
                m.model_name,
                m.model_name
            from _etl.models as m
            where not exists (select from edges as e where e.child_name = m.model_name)
            union
            select
                r.branch,
                e.child_name
            from reach as r
            inner join edges as e on r.model_name = e.parent_name
        )

        select
            r.branch,
            r.model_name,
            m.run_order
        from reach as r
        inner join _etl.models as m on r.model_name = m.model_name
    $fn$;

    create or replace function _etl.mark_interrupted_runs() returns int
    language sql
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
        with interrupted as (
            update _etl.job_runs as r
            set status = 'interrupted',
                finished_at = clock_timestamp(),
                error = concat_ws('; ', r.error,
                    'backend ' || coalesce(r.pid::text, '?') || ' ended during the run')
            where r.status = 'running'
                and not exists (
                    select from pg_stat_activity as a
                    where
                        a.pid = r.pid
                        and (a.backend_start is null or a.backend_start <= r.started_at)
                )
            returning 1
        )

        select count(*)::int from interrupted
    $fn$;

    drop procedure if exists _etl.run_pipeline(text, int);
    create or replace procedure _etl.run_pipeline(
        p_runner text default 'manual',
        p_max_batches_per_model int default 100,
        p_branch text default null
    )
    language plpgsql
    as $proc$
    declare
        v_run_id bigint;
        v_model text;
        v_lock bigint;
        v_limits bigint [];
        v_has_work boolean;
        v_batches int := 0;
        v_rows bigint := 0;
        v_errors text := null;
        v_skipped text [] := '{}';
        v_model_batches int;
    begin
        perform _etl.mark_interrupted_runs();
        insert into _etl.job_runs (runner, pid, branch)
        values (p_runner, pg_backend_pid(), p_branch)
        returning run_id into v_run_id;
        commit;
        for v_model in
            select m.model_name from _etl.models as m
            where p_branch is null or m.model_name in (
                select b.model_name from _etl.pipeline_branches() as b where b.branch = p_branch
            )
            order by m.run_order, m.model_name
        loop
            v_model_batches := 0;
            v_lock := hashtextextended('setu.model:' || v_model, 0);
            v_limits := _etl.run_limits(v_model);
            -- COMMIT is not allowed inside an exception block: each block wraps one call.
            loop
                if not pg_try_advisory_xact_lock(v_lock) then
                    v_skipped := array_append(v_skipped, v_model);
                    exit;
                end if;
                begin
                    v_has_work := _etl.take_horizon(v_model, v_limits);
                exception when others then
                    v_errors := concat_ws('; ', v_errors, v_model || ': ' || sqlerrm);
                    v_has_work := false;
                end;
                commit;
                exit when not v_has_work or v_model_batches >= p_max_batches_per_model;
                if not pg_try_advisory_xact_lock(v_lock) then
                    v_skipped := array_append(v_skipped, v_model);
                    exit;
                end if;
                begin
                    v_rows := v_rows + _etl.apply_batch(v_model);
                exception when others then
                    v_errors := concat_ws('; ', v_errors, v_model || ': ' || sqlerrm);
                    v_has_work := false;
                end;
                commit;
                exit when not v_has_work;
                v_model_batches := v_model_batches + 1;
            end loop;
            v_batches := v_batches + v_model_batches;
        end loop;
        update _etl.job_runs
        set finished_at = clock_timestamp(),
            status = case when v_errors is null then 'succeeded' else 'failed' end,
            batches = v_batches,
            rows_processed = v_rows,
            error = v_errors,
            skipped = v_skipped
        where run_id = v_run_id;
        commit;
    end;
    $proc$;

    {#- The signature TimescaleDB's add_job() expects of a user-defined action; the branch
        comes from the job's config ({"branch": root model}), all models without one. -#}
    create or replace procedure _etl.run_pipeline_job(job_id int, config jsonb)
    language plpgsql
    as $proc$
    begin
        call _etl.run_pipeline('timescaledb job ' || job_id, 100, config ->> 'branch');
    end;
    $proc$;
{% endmacro %}

{#- How long the oldest row of a source that a model has not processed yet has been
    waiting since it arrived in Bronze (null when none waits). For a Silver fact (Gold's
    sources) that is the earliest arrival among the Bronze rows of its first unprocessed
    batch: the end-to-end lag a dashboard sees. Other sources have none. -#}
{% macro create_source_lag_function() %}
    create or replace function _etl.source_lag(p_source text, p_after_id bigint)
    returns interval
    language plpgsql
    stable
    as $fn$
    declare
        v_waiting interval;
    begin
        if p_source like 'bronze.%' then
            execute format(
                'select now() - ingested_at from %s where id > $1 order by id limit 1',
                p_source::regclass
            ) into v_waiting using p_after_id;
        {%- for table_name, table in var("setu_contract")["bronze"].items() %}
        elsif p_source = {{ sql_literal("silver." ~ table["fact"]) }} then
            execute
                'select now() - min(bronze.ingested_at)'
                || ' from silver.{{ table["fact"] }} as fact'
                || ' inner join bronze.{{ table_name }} as bronze'
                || ' on fact.bronze_id = bronze.id'
                || ' where fact.etl_batch_id = ('
                || ' select min(etl_batch_id) from silver.{{ table["fact"] }}'
                || ' where etl_batch_id > $1)'
            into v_waiting using p_after_id;
        {%- endfor %}
        end if;
        return v_waiting;
    end;
    $fn$;
{% endmacro %}
