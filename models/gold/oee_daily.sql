{#- OEE per machine and site-local day, one row per gold.machine_utilization_daily row.
    A (machine, day) is recomputed whenever any input of it changed in the batch: its
    utilization row (state intervals), a cycle ending that day, or its downtime groups. -#}
{{ config(
    watermark_sources=[
        {'relation': 'gold.machine_utilization_daily', 'id_column': 'etl_batch_id'},
        {'relation': 'silver.fct_machine_cycles', 'id_column': 'etl_batch_id'},
        {'relation': 'gold.downtime_daily', 'id_column': 'etl_batch_id'},
    ],
    unique_key=['machine_id', 'local_date'],
) }}

with

machines as (
    select * from {{ ref('int_machines_localized') }}
),

changed_days as (
    select
        machine_id,
        local_date
    from {{ ref('machine_utilization_daily') }}
    where
        {{ watermark_range('gold.machine_utilization_daily', 'etl_batch_id') }}
    union
    select
        changed_cycles.machine_id,
        {{ local_date('changed_cycles.cycle_end', 'machines.timezone') }} as local_date
    from {{ ref('fct_machine_cycles') }} as changed_cycles
    inner join machines on changed_cycles.machine_id = machines.machine_id
    where
        {{ watermark_range('silver.fct_machine_cycles', 'changed_cycles.etl_batch_id') }}
    union
    select
        machine_id,
        local_date
    from {{ ref('downtime_daily') }}
    where {{ watermark_range('gold.downtime_daily', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the inputs.
utilization as not materialized (
    select * from {{ ref('machine_utilization_daily') }}
),

downtime as not materialized (
    select * from {{ ref('downtime_daily') }}
),

cycles as not materialized (
    select * from {{ ref('fct_machine_cycles') }}
),

-- Only days with a utilization row get an OEE row (contract); the others are computed
-- once their first state interval closes, which changes their utilization row.
touched_days as (
    select
        utilization.machine_id,
        utilization.local_date,
        machines.timezone,
        utilization.running_seconds,
        utilization.idle_seconds
        + utilization.running_seconds
        + utilization.setup_seconds
        + utilization.alarm_seconds
        + utilization.maintenance_seconds as scheduled_seconds
    from changed_days
    inner join utilization
        on
            changed_days.machine_id = utilization.machine_id
            and changed_days.local_date = utilization.local_date
    inner join machines on changed_days.machine_id = machines.machine_id
),

planned_downtime as (
    select
        touched_days.machine_id,
        touched_days.local_date,
        coalesce(sum(downtime.down_seconds) filter (where downtime.planned), 0)
            as planned_down_seconds
    from touched_days
    left join downtime
        on
            touched_days.machine_id = downtime.machine_id
            and touched_days.local_date = downtime.local_date
    group by touched_days.machine_id, touched_days.local_date
),

day_cycles as (
    select
        touched_days.machine_id,
        touched_days.local_date,
        count(cycles.bronze_id) as cycles,
        count(cycles.bronze_id) filter (where cycles.result = 'GOOD') as good_cycles,
        -- Cycles without a standard are left out of performance (contract).
        coalesce(sum(cycles.std_cycle_seconds), 0) as std_cycle_seconds
    from touched_days
    left join cycles
        on
            touched_days.machine_id = cycles.machine_id
            and cycles.cycle_end
            >= {{ local_day_start('touched_days.local_date', 'touched_days.timezone') }}
            and cycles.cycle_end
            < {{ local_day_end('touched_days.local_date', 'touched_days.timezone') }}
    group by touched_days.machine_id, touched_days.local_date
),

planned_time as (
    select
        touched_days.machine_id,
        touched_days.local_date,
        touched_days.running_seconds,
        planned_downtime.planned_down_seconds,
        greatest(
            touched_days.scheduled_seconds - planned_downtime.planned_down_seconds, 0
        ) as planned_seconds,
        day_cycles.cycles,
        day_cycles.good_cycles,
        day_cycles.std_cycle_seconds
    from touched_days
    inner join planned_downtime
        on
            touched_days.machine_id = planned_downtime.machine_id
            and touched_days.local_date = planned_downtime.local_date
    inner join day_cycles
        on
            touched_days.machine_id = day_cycles.machine_id
            and touched_days.local_date = day_cycles.local_date
),

factors as (
    select
        *,
        running_seconds / nullif(planned_seconds, 0) as availability,
        std_cycle_seconds / nullif(running_seconds, 0) as performance,
        good_cycles::double precision / nullif(cycles, 0) as quality
    from planned_time
),

final as (
    select
        machine_id,
        local_date,
        planned_seconds,
        planned_down_seconds,
        running_seconds,
        std_cycle_seconds,
        cycles,
        good_cycles,
        availability,
        performance,
        quality,
        -- Null when any factor is null: SQL's product already says so.
        availability * performance * quality as oee,
        {{ etl_batch_id() }} as etl_batch_id
    from factors
)

select * from final
