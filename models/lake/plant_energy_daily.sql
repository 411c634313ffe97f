with

machine_days as (
    select * from {{ ref('fleet_energy_daily') }}
),

machine_hours as (
    select * from {{ ref('fleet_energy_hourly') }}
),

plant_hours as (
    select
        plant,
        local_date,
        bucket,
        sum(kwh) as kwh
    from machine_hours
    group by plant, local_date, bucket
),

ranked_hours as (
    select
        plant,
        local_date,
        bucket,
        kwh,
        -- As energy_daily: the hour with most kWh, the earliest on ties.
        row_number() over (
            partition by plant, local_date order by kwh desc, bucket asc
        ) as hour_rank
    from plant_hours
),

summed as (
    select
        plant,
        local_date,
        count(*) as machines,
        sum(kwh_total) as kwh_total
    from machine_days
    group by plant, local_date
),

final as (
    select
        summed.plant,
        summed.local_date,
        ranked_hours.bucket as peak_hour,
        summed.machines,
        summed.kwh_total,
        ranked_hours.kwh as peak_kwh
    from summed
    left join ranked_hours
        on
            summed.plant = ranked_hours.plant
            and summed.local_date = ranked_hours.local_date
            and ranked_hours.hour_rank = 1
)

select * from final
