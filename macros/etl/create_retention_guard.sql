{#- Retention never takes a row some model has not processed yet. A Bronze row whose time is
    older than the retention window but whose id is above a reader's watermark (a late
    upload, a gateway's backlog, a pipeline that stopped) is still owed to Silver: dropping
    its chunk would lose it silently, in neither Silver nor the quarantine.

    _etl.unprocessed_predicate(relation, readers_required): SQL text that is true for the
    rows of `relation` at least one registered model has not taken in yet, from _etl.models
    (which models read it, through which id column) and _etl.watermarks (how far each got):
    "id > 41 or ...". Every id at or below a model's last_processed_id is in that model's
    output (the watermark is exact, see create_etl_functions), so rows outside the predicate
    are safe to drop. Null when no model reads the relation, unless readers_required (the
    Bronze tables, whose readers are the Silver facts), then "true": nothing is safe yet.

    _etl.drop_processed_chunks(relation, drop_after, readers_required, dry_run): drop_chunks
    older than drop_after (an interval, or a whole number counted back from the newest value
    of an integer time column), but never a chunk that holds an unprocessed row: the cutoff
    is moved back to the time of the oldest such row, so the chunk holding it and every later
    one stay. It first takes a SHARE lock on the hypertable, which waits for writers in flight
    and holds new ones until it commits: a late row cannot land in a chunk after the check.
    Returns one row: chunks older than the window, chunks dropped (or that would be), rows
    held back, and the time from which chunks are held. The same function serves
    `setu maintain` (Apache edition) and the Community job below.

    _etl.guarded_retention_job(job_id, config): the user-defined action that replaces
    TimescaleDB's retention policy on the Bronze tables (Community edition: add_job with
    config {"relation", "drop_after", "setu_managed": true}). A policy_retention job cannot
    be told about watermarks. -#}
{% macro create_retention_guard() %}
    create or replace function _etl.unprocessed_predicate(
        p_relation regclass, p_readers_required boolean default false
    ) returns text
    language sql
    stable
    security definer
    set search_path = pg_catalog, pg_temp
    as $fn$
        with readers as (
            select
                s.id_column,
                min(w.last_processed_id) as processed_id
            from _etl.models as m
            cross join lateral unnest(m.sources, m.id_columns) as s (source_name, id_column)
            inner join _etl.watermarks as w
                on m.model_name = w.model_name and s.source_name = w.source_name
            where to_regclass(s.source_name) = p_relation
            group by s.id_column
        )

        select coalesce(
            string_agg(format('%I > %s', id_column, processed_id), ' or ' order by id_column),
            case when p_readers_required then 'true' end
        )
        from readers
    $fn$;

    create or replace function _etl.drop_processed_chunks(
        p_relation regclass,
        p_drop_after text,
        p_readers_required boolean default false,
        p_dry_run boolean default false
    ) returns table (
        old_chunks bigint, dropped_chunks bigint, held_rows bigint, held_from text
    )
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
    as $fn$
    declare
        v_column name;
        v_type text;
        v_cutoff text;
        v_keep_from text;
        v_predicate text;
    begin
        select d.column_name, format_type(a.atttypid, a.atttypmod)
        into v_column, v_type
        from timescaledb_information.dimensions as d
        inner join pg_class as c on d.hypertable_name = c.relname
        inner join pg_namespace as n
            on c.relnamespace = n.oid and d.hypertable_schema = n.nspname
        inner join pg_attribute as a on c.oid = a.attrelid and d.column_name = a.attname
        where c.oid = p_relation and d.dimension_number = 1;
        if not found then
            raise exception 'setu: % is not a hypertable', p_relation
                using hint = 'only hypertables have chunks to drop';
        end if;
        if not p_dry_run then
            -- Writers in flight commit first, new ones wait: the check below stays true.
            execute format('lock table %s in share mode', p_relation);
        end if;
        if v_type in ('bigint', 'integer', 'smallint') then
            execute format('select (max(%I) - %s)::text from %s',
                v_column, p_drop_after::bigint, p_relation) into v_cutoff;
        else
            execute format('select (now() - %L::interval)::%s::text', p_drop_after, v_type)
                into v_cutoff;
        end if;
        old_chunks := 0;
        dropped_chunks := 0;
        held_rows := 0;
        if v_cutoff is null then
            return next;
            return;
        end if;
        v_predicate := _etl.unprocessed_predicate(p_relation, p_readers_required);
        if v_predicate is not null then
            execute format('select min(%1$I)::text, count(*) from %2$s'
                || ' where %1$I < %3$L::%4$s and (%5$s)',
                v_column, p_relation, v_cutoff, v_type, v_predicate)
                into held_from, held_rows;
        end if;
        v_keep_from := coalesce(held_from, v_cutoff);
        execute format('select count(*) from show_chunks(relation => %L::regclass,'
            || ' older_than => %L::%s)', p_relation, v_cutoff, v_type) into old_chunks;
        execute format('select count(*) from %s(relation => %L::regclass,'
            || ' older_than => %L::%s)',
            case when p_dry_run then 'show_chunks' else 'drop_chunks' end,
            p_relation, v_keep_from, v_type) into dropped_chunks;
        return next;
    end;
    $fn$;

    create or replace procedure _etl.guarded_retention_job(job_id int, config jsonb)
    language plpgsql
    as $proc$
    declare
        v_result record;
    begin
        select * into v_result from _etl.drop_processed_chunks(
            (config ->> 'relation')::regclass, config ->> 'drop_after', true
        );
        if v_result.held_rows > 0 then
            raise log 'setu: job %: % chunk(s) of % held back: % unprocessed row(s) from %',
                job_id, v_result.old_chunks - v_result.dropped_chunks, config ->> 'relation',
                v_result.held_rows, v_result.held_from;
        end if;
    end;
    $proc$;
{% endmacro %}
