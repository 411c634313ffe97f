with

exported as (
    select * from {{ lake_parquet('gold', 'oee_daily') }}
),

final as (
    select
        plant,
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
        oee
    from exported
)

select * from final
