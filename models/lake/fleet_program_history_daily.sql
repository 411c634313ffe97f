with

exported as (
    select * from {{ lake_parquet('gold', 'program_history_daily') }}
),

final as (
    select
        plant,
        machine_id,
        local_date,
        program_name,
        cycles,
        good_parts,
        scrap_parts,
        cycle_seconds
    from exported
)

select * from final
