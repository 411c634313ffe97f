with

exported as (
    select * from {{ lake_parquet('gold', 'alerts_daily') }}
),

final as (
    select
        plant,
        machine_id,
        local_date,
        severity_class,
        alert_count
    from exported
)

select * from final
