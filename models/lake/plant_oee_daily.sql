with

machine_days as (
    select * from {{ ref('fleet_oee_daily') }}
),

summed as (
    select
        plant,
        local_date,
        count(*) as machines,
        sum(planned_seconds) as planned_seconds,
        sum(running_seconds) as running_seconds,
        sum(std_cycle_seconds) as std_cycle_seconds,
        sum(cycles) as cycles,
        sum(good_cycles) as good_cycles
    from machine_days
    group by plant, local_date
),

-- The contract's factors over the plant: each from the plant's sums, null when its divisor
-- is 0, and OEE null when any factor is.
factors as (
    select
        *,
        case when planned_seconds > 0 then running_seconds / planned_seconds end
            as availability,
        case when running_seconds > 0 then std_cycle_seconds / running_seconds end
            as performance,
        case when cycles > 0 then good_cycles / cycles end as quality
    from summed
),

final as (
    select
        plant,
        local_date,
        machines,
        planned_seconds,
        running_seconds,
        std_cycle_seconds,
        cycles,
        good_cycles,
        availability,
        performance,
        quality,
        availability * performance * quality as oee
    from factors
)

select * from final
