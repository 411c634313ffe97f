with

machine_days as (
    select * from {{ ref('fleet_machine_utilization_daily') }}
),

summed as (
    select
        plant,
        local_date,
        count(*) as machines,
        sum(off_seconds) as off_seconds,
        sum(idle_seconds) as idle_seconds,
        sum(running_seconds) as running_seconds,
        sum(setup_seconds) as setup_seconds,
        sum(alarm_seconds) as alarm_seconds,
        sum(maintenance_seconds) as maintenance_seconds
    from machine_days
    group by plant, local_date
),

totalled as (
    select
        *,
        (
            idle_seconds + running_seconds + setup_seconds + alarm_seconds
            + maintenance_seconds
        ) as busy_seconds
    from summed
),

final as (
    select
        plant,
        local_date,
        machines,
        off_seconds,
        idle_seconds,
        running_seconds,
        setup_seconds,
        alarm_seconds,
        maintenance_seconds,
        -- The contract's utilization, over the plant: running ÷ all states but OFF.
        case
            when busy_seconds > 0 then running_seconds * 100.0 / busy_seconds
        end as utilization_pct
    from totalled
)

select * from final
