{{ config(
    watermark_sources=[{'relation': 'silver.fct_state_intervals', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'local_date'],
) }}

with

-- An interval counts for at most the contract's max_event_age from its start (a machine
-- silent for longer is not in a known state), so no interval splits into more days.
changed_intervals as (
    select
        machine_id,
        valid_from,
        least(
            valid_to, {{ shifted_by_max_event_age('valid_from', '+') }}
        ) as counted_until
    from {{ ref('fct_state_intervals') }}
    where
        {{ watermark_range('silver.fct_state_intervals', 'etl_batch_id') }}
        and valid_to is not null
),

-- Not materialized: only the index probes below may touch the intervals.
state_intervals as not materialized (
    select * from {{ ref('fct_state_intervals') }}
),

machines as (
    select * from {{ ref('int_machines_localized') }}
),

-- Every local day a changed closed interval overlaps (a late event splits an interval into
-- pieces that together cover the days the old one did).
touched_days as (
    select distinct
        changed_intervals.machine_id,
        machines.timezone,
        local_day.day::date as local_date
    from changed_intervals
    inner join machines on changed_intervals.machine_id = machines.machine_id
    cross join lateral generate_series(
        {{ local_date('changed_intervals.valid_from', 'machines.timezone') }},
        {{ local_date(
            "changed_intervals.counted_until - interval '1 microsecond'", 'machines.timezone'
        ) }},
        interval '1 day'
    ) as local_day (day)
),

day_bounds as (
    select
        machine_id,
        local_date,
        {{ local_day_start('local_date', 'timezone') }} as day_start,
        {{ local_day_end('local_date', 'timezone') }} as day_end
    from touched_days
),

-- The closed intervals overlapping each day: the one in force at the day's start and those
-- that start during the day.
interval_at_day_start as (
    select
        day_bounds.machine_id,
        day_bounds.local_date,
        day_bounds.day_start,
        day_bounds.day_end,
        in_force.state,
        in_force.valid_from,
        in_force.valid_to
    from day_bounds
    cross join lateral (
        select
            state_intervals.state,
            state_intervals.valid_from,
            state_intervals.valid_to
        from state_intervals
        where
            state_intervals.machine_id = day_bounds.machine_id
            and state_intervals.valid_from <= day_bounds.day_start
        order by state_intervals.valid_from desc, state_intervals.bronze_id desc
        limit 1
    ) as in_force
),

intervals_starting_in_day as (
    select
        day_bounds.machine_id,
        day_bounds.local_date,
        day_bounds.day_start,
        day_bounds.day_end,
        state_intervals.state,
        state_intervals.valid_from,
        state_intervals.valid_to
    from day_bounds
    inner join state_intervals
        on
            day_bounds.machine_id = state_intervals.machine_id
            and day_bounds.day_start < state_intervals.valid_from
            and day_bounds.day_end > state_intervals.valid_from
),

counted_intervals as (
    select
        machine_id,
        local_date,
        day_start,
        day_end,
        state,
        valid_from,
        valid_to,
        -- least() ignores nulls: an open interval (valid_to null) is not counted below
        least(
            valid_to, {{ shifted_by_max_event_age('valid_from', '+') }}
        ) as counted_until
    from (
        select * from interval_at_day_start
        union all
        select * from intervals_starting_in_day
    ) as overlapping
),

day_intervals as (
    select
        machine_id,
        local_date,
        state,
        greatest(valid_from, day_start) as piece_start,
        least(counted_until, day_end) as piece_end
    from counted_intervals
    where valid_to is not null and counted_until > day_start
),

durations as (
    select
        machine_id,
        local_date,
        state,
        extract(epoch from piece_end - piece_start)::double precision as seconds
    from day_intervals
),

final as (
    select
        machine_id,
        local_date,
        {%- for state in ['off', 'idle', 'running', 'setup', 'alarm', 'maintenance'] %}
            coalesce(sum(seconds) filter (where state = '{{ state | upper }}'), 0)
                as {{ state }}_seconds,
        {%- endfor %}
        100.0 * coalesce(sum(seconds) filter (where state = 'RUNNING'), 0)
        / nullif(sum(seconds) filter (where state != 'OFF'), 0) as utilization_pct,
        {{ etl_batch_id() }} as etl_batch_id
    from durations
    group by machine_id, local_date
)

select * from final
