with

exported as (
    select * from {{ lake_parquet('gold', 'energy_hourly') }}
),

final as (
    select
        plant,
        machine_id,
        -- The export files each hour under the local date of its start (as energy_daily
        -- counts it): a plant's hours of a day are one partition.
        local_date,
        bucket,
        kwh
    from exported
)

select * from final
