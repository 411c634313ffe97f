{#- Every machine with the IANA time zone its local days and shifts use: its site's, or UTC
    when the machine's site is unknown (so no machine falls out of the daily Gold models).
    Read from master through the staging views, not from the dim_machine table: the
    in-database job runs Gold's compiled SQL without rebuilding dbt's tables, and a machine
    added since the last dbt run would lose its daily rows for good. -#}
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
        coalesce(sites.timezone, 'UTC') as timezone
    from machines
    left join sites on machines.site_id = sites.site_id
)

select * from final
