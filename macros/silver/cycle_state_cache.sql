{#- Every machine in master.machines gets a cache row (no cycle yet: nulls), so a machine's
    first batch finds its row. -#}
{% macro add_missing_cycle_state_rows() %}
    insert into {{ this }} (machine_id, updated_at)
    select machines.machine_id, now()
    from {{ ref('stg_master__machines') }} as machines
    on conflict (machine_id) do nothing
{% endmacro %}

{#- After a batch of cycles: the cache rows of the batch's machines follow the facts (the
    latest cycle by cycle_start, then bronze_id), one index probe per machine. -#}
{% macro refresh_latest_cycle_state() %}
    insert into {{ ref('latest_cycle_state') }} as state (
        machine_id, last_cycle_end, last_part_count, last_bronze_id, last_cycle_start, updated_at
    )
    select
        batch_machines.machine_id, latest.cycle_end, latest.part_count, latest.bronze_id,
        latest.cycle_start, now()
    from (
        select distinct machine_id from pg_temp._etl_batch where quarantine_reason is null
    ) as batch_machines
    cross join lateral (
        select cycles.cycle_end, cycles.part_count, cycles.bronze_id, cycles.cycle_start
        from {{ this }} as cycles
        where cycles.machine_id = batch_machines.machine_id
        order by cycles.cycle_start desc, cycles.bronze_id desc
        limit 1
    ) as latest
    on conflict (machine_id) do update
    set last_cycle_end = excluded.last_cycle_end,
        last_part_count = excluded.last_part_count,
        last_bronze_id = excluded.last_bronze_id,
        last_cycle_start = excluded.last_cycle_start,
        updated_at = excluded.updated_at
{% endmacro %}

{#- A rebuild of the cycle facts starts from an empty cache. -#}
{% macro reset_latest_cycle_state() %}
    update {{ ref('latest_cycle_state') }}
    set last_cycle_end = null, last_part_count = null, last_bronze_id = null,
        last_cycle_start = null, updated_at = now()
{% endmacro %}

{#- `setu seed-state`: a cache row for every machine, recomputed from the cycle facts (one
    index probe per machine), for a new deployment or after restoring the facts. -#}
{% macro seed_cycle_state() %}
    {%- set sql -%}
    insert into silver.latest_cycle_state as state (
        machine_id, last_cycle_end, last_part_count, last_bronze_id, last_cycle_start, updated_at
    )
    select
        machines.machine_id, latest.cycle_end, latest.part_count, latest.bronze_id,
        latest.cycle_start, now()
    from master.machines as machines
    left join lateral (
        select cycles.cycle_end, cycles.part_count, cycles.bronze_id, cycles.cycle_start
        from silver.fct_machine_cycles as cycles
        where cycles.machine_id = machines.machine_id
        order by cycles.cycle_start desc, cycles.bronze_id desc
        limit 1
    ) as latest on true
    on conflict (machine_id) do update
    set last_cycle_end = excluded.last_cycle_end,
        last_part_count = excluded.last_part_count,
        last_bronze_id = excluded.last_bronze_id,
        last_cycle_start = excluded.last_cycle_start,
        updated_at = excluded.updated_at
    {%- endset -%}
    {%- set result = run_query(sql) -%}
    {{ log("setu: latest_cycle_state seeded for every machine in master.machines", info=true) }}
{% endmacro %}
