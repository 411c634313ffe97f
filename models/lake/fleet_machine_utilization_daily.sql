with

exported as (
    select * from {{ lake_parquet('gold', 'machine_utilization_daily') }}
),

final as (
    select
        plant,
        machine_id,
        local_date,
        off_seconds,
        idle_seconds,
        running_seconds,
        setup_seconds,
        alarm_seconds,
        maintenance_seconds,
        utilization_pct
    from exported
)

select * from final
