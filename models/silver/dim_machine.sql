{{ config(materialized='table') }}

with

machines as (
    select * from {{ ref('stg_master__machines') }}
),

sites as (
    select * from {{ ref('stg_master__sites') }}
),

final as (
    select
        machines.machine_id,
        machines.machine_code,
        machines.site_id,
        sites.site_code,
        sites.timezone
    from machines
    left join sites on machines.site_id = sites.site_id
)

select * from final
