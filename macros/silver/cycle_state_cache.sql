{#- Every machine in master.machines gets a cache row (no cycle yet: nulls), so a machine's
    first batch finds its row. -#}
{% macro add_missing_cycle_state_rows() %}
    insert into {{ this }} (machine_id, updated_at)
    select machines.machine_id, now()
    from {{ ref('stg_master__machines') }} as machines
    on conflict (machine_id) do nothing
{% endmacro %}

{#- The cache rows of the given machines follow the cycle facts: each machine's latest cycle
    (by cycle_start, then bronze_id), one index probe per machine; null when it has none. -#}
{% macro upsert_latest_cycle_state(machines_sql, state_relation, cycles_relation) %}
    insert into {{ state_relation }} as state (
        machine_id, last_cycle_end, last_part_count, last_bronze_id, last_cycle_start, updated_at
    )
    select
        machines.machine_id, latest.cycle_end, latest.part_count, latest.bronze_id,
        latest.cycle_start, now()
    from ({{ machines_sql }}) as machines
    left join lateral (
        select cycles.cycle_end, cycles.part_count, cycles.bronze_id, cycles.cycle_start
        from {{ cycles_relation }} as cycles
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
{% endmacro %}

{#- After a batch of cycles, in its transaction: the batch's machines. -#}
{% macro refresh_latest_cycle_state() %}
    {{ upsert_latest_cycle_state(
        "select distinct machine_id from pg_temp._etl_batch where quarantine_reason is null",
        ref('latest_cycle_state'), this) }}
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
    {%- do run_query(upsert_latest_cycle_state(
        "select machine_id from master.machines",
        "silver.latest_cycle_state", "silver.fct_machine_cycles")) -%}
    {{ log("setu: latest_cycle_state seeded for every machine in master.machines", info=true) }}
{% endmacro %}
