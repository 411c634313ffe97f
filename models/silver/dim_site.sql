{{ config(materialized='table') }}

with

sites as (
    select * from {{ ref('stg_master__sites') }}
),

final as (
    select
        site_id,
        site_code,
        timezone
    from sites
)

select * from final
