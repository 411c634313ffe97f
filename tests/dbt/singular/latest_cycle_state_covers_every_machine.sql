{#- Contract: silver.latest_cycle_state has one row for every machine in master.machines,
    also those with no cycle yet. Fails with each machine that has none. -#}
with

machines as (
    select machine_id from {{ ref('stg_master__machines') }}
),

cycle_state as (
    select machine_id from {{ ref('latest_cycle_state') }}
),

final as (
    select machines.machine_id
    from machines
    left join cycle_state on machines.machine_id = cycle_state.machine_id
    where cycle_state.machine_id is null
)

select * from final
