with

exported as (
    select * from {{ lake_parquet('gold', 'energy_daily') }}
),

final as (
    select
        plant,
        machine_id,
        local_date,
        peak_hour,
        kwh_total,
        peak_kwh
    from exported
)

select * from final
