{{ config(
    watermark_sources=[{'relation': 'silver.fct_machine_cycles', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'local_date', 'program_name'],
    null_safe_keys=['program_name'],
) }}

with

changed_cycles as (
    select
        machine_id,
        cycle_end,
        program_name
    from {{ ref('fct_machine_cycles') }}
    where {{ watermark_range('silver.fct_machine_cycles', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the cycles.
cycles as not materialized (
    select * from {{ ref('fct_machine_cycles') }}
),

machines as (
    select * from {{ ref('int_machines_localized') }}
),

touched_groups as (
    select distinct
        changed_cycles.machine_id,
        changed_cycles.program_name,
        machines.timezone,
        {{ local_date('changed_cycles.cycle_end', 'machines.timezone') }} as local_date
    from changed_cycles
    inner join machines on changed_cycles.machine_id = machines.machine_id
),

day_cycles as (
    select
        touched_groups.machine_id,
        touched_groups.local_date,
        touched_groups.program_name,
        cycles.result,
        cycles.cycle_seconds
    from touched_groups
    inner join cycles
        on
            touched_groups.machine_id = cycles.machine_id
            and cycles.cycle_end
            >= {{ local_day_start('touched_groups.local_date', 'touched_groups.timezone') }}
            and cycles.cycle_end
            < {{ local_day_end('touched_groups.local_date', 'touched_groups.timezone') }}
            and touched_groups.program_name is not distinct from cycles.program_name
),

final as (
    select
        machine_id,
        local_date,
        program_name,
        count(*) as cycles,
        count(*) filter (where result = 'GOOD') as good_parts,
        count(*) filter (where result = 'SCRAP') as scrap_parts,
        sum(cycle_seconds) as cycle_seconds,
        {{ etl_batch_id() }} as etl_batch_id
    from day_cycles
    group by machine_id, local_date, program_name
)

select * from final
