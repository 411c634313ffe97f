{#- NC programs: every program named by an accepted cycle or state event, with the earliest
    time it was seen. Swept from the two facts on their etl_batch_id, so a late event that
    names a program earlier moves its first_seen_at back. -#}
{{ config(
    materialized='watermark_incremental',
    watermark_sources=[
        {'relation': 'silver.fct_machine_cycles', 'id_column': 'etl_batch_id'},
        {'relation': 'silver.fct_state_intervals', 'id_column': 'etl_batch_id'},
    ],
    unique_key=['program_name'],
) }}

with

changed_cycles as (
    select
        program_name,
        cycle_end as seen_at
    from {{ ref('fct_machine_cycles') }}
    where
        {{ watermark_range('silver.fct_machine_cycles', 'etl_batch_id') }}
        and program_name is not null
),

changed_state_intervals as (
    select
        program_name,
        valid_from as seen_at
    from {{ ref('fct_state_intervals') }}
    where
        {{ watermark_range('silver.fct_state_intervals', 'etl_batch_id') }}
        and program_name is not null
),

-- Not materialized: only the key probes below may touch the programs already known.
known_programs as not materialized (
    select * from {{ this }}
),

seen_programs as (
    select
        program_name,
        min(seen_at) as first_seen_at
    from (
        select * from changed_cycles
        union all
        select * from changed_state_intervals
    ) as sightings
    group by program_name
),

final as (
    select
        seen_programs.program_name,
        least(seen_programs.first_seen_at, known_programs.first_seen_at) as first_seen_at
    from seen_programs
    left join known_programs on seen_programs.program_name = known_programs.program_name
)

select * from final
