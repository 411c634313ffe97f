with

machine_days as (
    select * from {{ ref('fleet_program_history_daily') }}
),

final as (
    select
        plant,
        local_date,
        program_name,
        count(distinct machine_id) as machines,
        sum(cycles) as cycles,
        sum(good_parts) as good_parts,
        sum(scrap_parts) as scrap_parts,
        sum(cycle_seconds) as cycle_seconds
    from machine_days
    group by plant, local_date, program_name
)

select * from final
