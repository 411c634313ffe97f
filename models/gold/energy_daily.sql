{{ config(
    watermark_sources=[{'relation': 'gold.energy_hourly', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'local_date'],
) }}

with

changed_hours as (
    select
        machine_id,
        bucket
    from {{ ref('energy_hourly') }}
    where {{ watermark_range('gold.energy_hourly', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the hourly rows.
energy_hours as not materialized (
    select * from {{ ref('energy_hourly') }}
),

machines as (
    select * from {{ ref('int_machines_localized') }}
),

touched_days as (
    select distinct
        changed_hours.machine_id,
        machines.timezone,
        {{ local_date('changed_hours.bucket', 'machines.timezone') }} as local_date
    from changed_hours
    inner join machines on changed_hours.machine_id = machines.machine_id
),

day_hours as (
    select
        touched_days.machine_id,
        touched_days.local_date,
        energy_hours.bucket,
        energy_hours.kwh
    from touched_days
    inner join energy_hours
        on
            touched_days.machine_id = energy_hours.machine_id
            and energy_hours.bucket
            >= {{ local_day_start('touched_days.local_date', 'touched_days.timezone') }}
            and energy_hours.bucket
            < {{ local_day_end('touched_days.local_date', 'touched_days.timezone') }}
),

ranked as (
    select
        machine_id,
        local_date,
        bucket,
        kwh,
        row_number() over (
            partition by machine_id, local_date order by kwh desc, bucket asc
        ) as kwh_rank
    from day_hours
),

final as (
    select
        machine_id,
        local_date,
        sum(kwh) as kwh_total,
        min(bucket) filter (where kwh_rank = 1) as peak_hour,
        min(kwh) filter (where kwh_rank = 1) as peak_kwh,
        {{ etl_batch_id() }} as etl_batch_id
    from ranked
    group by machine_id, local_date
)

select * from final
