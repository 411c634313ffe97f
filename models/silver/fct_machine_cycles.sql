{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.machine_cycles'],
    quarantine_source_table='machine_cycles',
    unique_key=['bronze_id'],
    time_column_name='cycle_end',
    after_batch=['refresh_latest_cycle_state'],
    on_reset=['reset_latest_cycle_state'],
    indexes=[{'columns': ['machine_id', 'cycle_start', 'bronze_id']}],
) }}

with

validated as (
    select * from {{ ref('int_machine_cycles_validated') }}
),

cycle_state as (
    select * from {{ ref('latest_cycle_state') }}
),

-- Not materialized: only the index probes below may touch the existing facts.
existing_cycles as not materialized (
    select * from {{ this }}
),

new_cycles as (
    select
        bronze_id,
        machine_id,
        cycle_start,
        time as cycle_end,
        part_count,
        result_code as result,
        program_name,
        std_cycle_seconds,
        std_load_unload_seconds,
        down_threshold_seconds,
        silver.fn_get_shift_id(site_id, cycle_start) as shift_id
    from validated
    where quarantine_reason is null
),

first_new_cycles as (
    select distinct on (machine_id)
        machine_id,
        cycle_start as first_cycle_start,
        bronze_id as first_bronze_id
    from new_cycles
    order by machine_id asc, cycle_start asc, bronze_id asc
),

-- In order (the common case): the batch starts after the cached last cycle, which is the
-- predecessor. Otherwise (a late cycle, or no cached cycle) the predecessor and the cycles
-- after the late one come from the facts, by index.
anchored as (
    select
        first_new_cycles.machine_id,
        first_new_cycles.first_cycle_start,
        first_new_cycles.first_bronze_id,
        cycle_state.last_cycle_end,
        cycle_state.last_part_count,
        coalesce(
            (first_new_cycles.first_cycle_start, first_new_cycles.first_bronze_id)
            > (cycle_state.last_cycle_start, cycle_state.last_bronze_id),
            false
        ) as is_in_order
    from first_new_cycles
    left join cycle_state on first_new_cycles.machine_id = cycle_state.machine_id
),

predecessors as (
    select
        anchored.machine_id,
        case
            when anchored.is_in_order then anchored.last_cycle_end else earlier.cycle_end
        end as previous_cycle_end,
        case
            when anchored.is_in_order then anchored.last_part_count else earlier.part_count
        end as previous_part_count
    from anchored
    left join lateral (
        select
            existing_cycles.cycle_end,
            existing_cycles.part_count
        from existing_cycles
        where
            not anchored.is_in_order
            and existing_cycles.machine_id = anchored.machine_id
            and (existing_cycles.cycle_start, existing_cycles.bronze_id)
            < (anchored.first_cycle_start, anchored.first_bronze_id)
        order by existing_cycles.cycle_start desc, existing_cycles.bronze_id desc
        limit 1
    ) as earlier on true
),

reopened_cycles as (
    select
        existing_cycles.bronze_id,
        existing_cycles.machine_id,
        existing_cycles.cycle_start,
        existing_cycles.cycle_end,
        existing_cycles.part_count,
        existing_cycles.result,
        existing_cycles.program_name,
        existing_cycles.std_cycle_seconds,
        existing_cycles.std_load_unload_seconds,
        existing_cycles.down_threshold_seconds,
        existing_cycles.shift_id
    from anchored
    inner join existing_cycles
        on
            anchored.machine_id = existing_cycles.machine_id
            and (existing_cycles.cycle_start, existing_cycles.bronze_id)
            > (anchored.first_cycle_start, anchored.first_bronze_id)
    where not anchored.is_in_order
),

recomputed as (
    select * from new_cycles
    union all
    select * from reopened_cycles
),

stitched as (
    select
        recomputed.*,
        lag(recomputed.cycle_end, 1, predecessors.previous_cycle_end) over machine_order
            as previous_cycle_end,
        lag(recomputed.part_count, 1, predecessors.previous_part_count) over machine_order
            as previous_part_count
    from recomputed
    inner join predecessors on recomputed.machine_id = predecessors.machine_id
    window machine_order as (
        partition by recomputed.machine_id
        order by recomputed.cycle_start, recomputed.bronze_id
    )
),

gaps as (
    select
        stitched.*,
        extract(epoch from stitched.cycle_end - stitched.cycle_start)::double precision
            as cycle_seconds,
        extract(epoch from stitched.cycle_start - stitched.previous_cycle_end)::double precision
            as load_unload_seconds,
        coalesce(stitched.std_load_unload_seconds, 0) as std_gap_seconds
    from stitched
),

measured as (
    select
        bronze_id,
        machine_id,
        cycle_start,
        cycle_end,
        cycle_seconds,
        load_unload_seconds,
        case
            when load_unload_seconds is null then null
            when load_unload_seconds <= std_gap_seconds then 0
            when load_unload_seconds > down_threshold_seconds then 0
            else load_unload_seconds - std_gap_seconds
        end as exceed_load_unload_seconds,
        case
            when load_unload_seconds is null then null
            when load_unload_seconds <= std_gap_seconds then 0
            when load_unload_seconds > down_threshold_seconds
                then load_unload_seconds - std_gap_seconds
            else 0
        end as downtime_seconds,
        case
            when part_count - previous_part_count < 0 then part_count
            else part_count - previous_part_count
        end as parts_delta,
        part_count,
        result,
        program_name,
        shift_id,
        std_cycle_seconds,
        std_load_unload_seconds,
        down_threshold_seconds
    from gaps
),

rejected as (
    select
        bronze_id,
        time as cycle_end,
        quarantine_reason
    from validated
    where quarantine_reason is not null
),

final as (
    select
        bronze_id,
        machine_id,
        cycle_start,
        cycle_end,
        cycle_seconds,
        load_unload_seconds,
        exceed_load_unload_seconds,
        downtime_seconds,
        parts_delta,
        part_count,
        result,
        program_name,
        shift_id,
        std_cycle_seconds,
        std_load_unload_seconds,
        down_threshold_seconds,
        {{ etl_batch_id() }} as etl_batch_id,
        null::text as quarantine_reason
    from measured
    union all
    select
        bronze_id,
        null::bigint as machine_id,
        null::timestamptz as cycle_start,
        cycle_end,
        null::double precision as cycle_seconds,
        null::double precision as load_unload_seconds,
        null::double precision as exceed_load_unload_seconds,
        null::double precision as downtime_seconds,
        null::bigint as parts_delta,
        null::bigint as part_count,
        null::text as result,
        null::text as program_name,
        null::int as shift_id,
        null::double precision as std_cycle_seconds,
        null::double precision as std_load_unload_seconds,
        null::double precision as down_threshold_seconds,
        null::bigint as etl_batch_id,
        quarantine_reason
    from rejected
)

select * from final
