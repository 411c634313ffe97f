{#- Contract: webapp.machine_status_current has one row for every machine in
    master.machines. Fails with each machine that has none. -#}
with

machines as (
    select machine_id from {{ ref('stg_master__machines') }}
),

machine_status as (
    select machine_id from {{ ref('machine_status_current') }}
),

final as (
    select machines.machine_id
    from machines
    left join machine_status on machines.machine_id = machine_status.machine_id
    where machine_status.machine_id is null
)

select * from final
