{{ config(materialized='table') }}

with

shifts as (
    select * from {{ ref('stg_master__shifts') }}
),

final as (
    select
        site_id,
        shift_id,
        shift_name,
        start_local,
        end_local,
        is_overnight
    from shifts
)

select * from final
