{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.machine_state_events'],
    quarantine_source_table='machine_state_events',
    unique_key=['bronze_id'],
    time_column_name='valid_from',
    indexes=[{'columns': ['machine_id', 'valid_from', 'bronze_id']}],
) }}

with

validated as (
    select * from {{ ref('int_machine_state_events_validated') }}
),

-- Not materialized: only the index probes below may touch the existing intervals.
existing_intervals as not materialized (
    select * from {{ this }}
),

new_events as (
    select
        bronze_id,
        machine_id,
        state_code as state,
        program_name,
        time as valid_from
    from validated
    where quarantine_reason is null
),

first_new_events as (
    select distinct on (machine_id)
        machine_id,
        valid_from as first_valid_from,
        bronze_id as first_bronze_id
    from new_events
    order by machine_id asc, valid_from asc, bronze_id asc
),

-- The interval open just before a machine's first new event ends at that event (or at a
-- later one, when the new event is late); intervals after a late event are re-derived.
previous_intervals as (
    select earlier.*
    from first_new_events
    cross join lateral (
        select
            existing_intervals.bronze_id,
            existing_intervals.machine_id,
            existing_intervals.state,
            existing_intervals.program_name,
            existing_intervals.valid_from
        from existing_intervals
        where
            existing_intervals.machine_id = first_new_events.machine_id
            and (existing_intervals.valid_from, existing_intervals.bronze_id)
            < (first_new_events.first_valid_from, first_new_events.first_bronze_id)
        order by existing_intervals.valid_from desc, existing_intervals.bronze_id desc
        limit 1
    ) as earlier
),

following_intervals as (
    select
        existing_intervals.bronze_id,
        existing_intervals.machine_id,
        existing_intervals.state,
        existing_intervals.program_name,
        existing_intervals.valid_from
    from first_new_events
    inner join existing_intervals
        on
            first_new_events.machine_id = existing_intervals.machine_id
            and (existing_intervals.valid_from, existing_intervals.bronze_id)
            > (first_new_events.first_valid_from, first_new_events.first_bronze_id)
),

recomputed as (
    select * from new_events
    union all
    select * from previous_intervals
    union all
    select * from following_intervals
),

intervals as (
    select
        bronze_id,
        machine_id,
        state,
        program_name,
        valid_from,
        lead(valid_from) over (
            partition by machine_id order by valid_from, bronze_id
        ) as valid_to
    from recomputed
),

rejected as (
    select
        bronze_id,
        time as valid_from,
        quarantine_reason
    from validated
    where quarantine_reason is not null
),

final as (
    select
        bronze_id,
        machine_id,
        state,
        program_name,
        valid_from,
        valid_to,
        {{ etl_batch_id() }} as etl_batch_id,
        null::text as quarantine_reason
    from intervals
    union all
    select
        bronze_id,
        null::bigint as machine_id,
        null::text as state,
        null::text as program_name,
        valid_from,
        null::timestamptz as valid_to,
        null::bigint as etl_batch_id,
        quarantine_reason
    from rejected
)

select * from final
