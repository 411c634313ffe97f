with

machine_days as (
    select * from {{ ref('fleet_alerts_daily') }}
),

final as (
    select
        plant,
        local_date,
        severity_class,
        count(distinct machine_id) as machines,
        sum(alert_count) as alert_count
    from machine_days
    group by plant, local_date, severity_class
)

select * from final
