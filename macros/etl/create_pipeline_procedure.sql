{#- _etl.run_pipeline(): the in-database job. It runs every registered model (compiled by
    the last dbt run into _etl.models) in layer order, batch by batch, through the same
    take_horizon()/apply_batch() functions dbt's materialization calls, committing after
    each step. apply_batch()'s per-model advisory lock and its re-check of the watermark
    mean a job and `dbt build` never apply the same batch twice. Each run is logged in
    _etl.job_runs; a failing model is logged and the run goes on with the next one. -#}
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

    create or replace procedure _etl.run_pipeline(
        p_runner text default 'manual', p_max_batches_per_model int default 100
    )
    language plpgsql
    as $proc$
    declare
        v_run_id bigint;
        v_model text;
        v_has_work boolean;
        v_batches int := 0;
        v_rows bigint := 0;
        v_errors text := null;
        v_model_batches int;
    begin
        insert into _etl.job_runs (runner) values (p_runner) returning run_id into v_run_id;
        commit;
        for v_model in
            select model_name from _etl.models order by run_order, model_name
        loop
            v_model_batches := 0;
            -- COMMIT is not allowed inside an exception block: each block wraps one call.
            loop
                begin
                    v_has_work := _etl.take_horizon(v_model);
                exception when others then
                    v_errors := concat_ws('; ', v_errors, v_model || ': ' || sqlerrm);
                    v_has_work := false;
                end;
                commit;
                exit when not v_has_work or v_model_batches >= p_max_batches_per_model;
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
            error = v_errors
        where run_id = v_run_id;
        commit;
    end;
    $proc$;

    {#- The signature TimescaleDB's add_job() expects of a user-defined action. -#}
    create or replace procedure _etl.run_pipeline_job(job_id int, config jsonb)
    language plpgsql
    as $proc$
    begin
        call _etl.run_pipeline('timescaledb job ' || job_id);
    end;
    $proc$;
{% endmacro %}

{#- How long the oldest row of a source that a model has not processed yet has been
    waiting (null when none waits): its arrival for Bronze, its batch time for Silver. -#}
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
        end if;
        return v_waiting;
    end;
    $fn$;
{% endmacro %}
