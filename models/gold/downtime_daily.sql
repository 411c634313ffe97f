{#- Stoppages per machine, site-local day of down_start and reason. A stoppage counts whole
    on the date it started (contract), so a late stoppage touches exactly one group. -#}
{{ config(
    watermark_sources=[{'relation': 'silver.fct_downtime_events', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'local_date', 'reason_code'],
) }}

with

changed_stoppages as (
    select
        machine_id,
        down_start,
        reason_code
    from {{ ref('fct_downtime_events') }}
    where {{ watermark_range('silver.fct_downtime_events', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the stoppages.
stoppages as not materialized (
    select * from {{ ref('fct_downtime_events') }}
),

machines as (
    select * from {{ ref('int_machines_localized') }}
),

reasons as (
    select * from {{ ref('stg_master__downtime_reasons') }}
),

touched_groups as (
    select distinct
        changed_stoppages.machine_id,
        changed_stoppages.reason_code,
        machines.timezone,
        {{ local_date('changed_stoppages.down_start', 'machines.timezone') }} as local_date
    from changed_stoppages
    inner join machines on changed_stoppages.machine_id = machines.machine_id
),

day_stoppages as (
    select
        touched_groups.machine_id,
        touched_groups.local_date,
        touched_groups.reason_code,
        stoppages.down_seconds
    from touched_groups
    inner join stoppages
        on
            touched_groups.machine_id = stoppages.machine_id
            and stoppages.down_start
            >= {{ local_day_start('touched_groups.local_date', 'touched_groups.timezone') }}
            and stoppages.down_start
            < {{ local_day_end('touched_groups.local_date', 'touched_groups.timezone') }}
            and touched_groups.reason_code = stoppages.reason_code
),

aggregated as (
    select
        machine_id,
        local_date,
        reason_code,
        count(*) as events,
        sum(down_seconds) as down_seconds
    from day_stoppages
    group by machine_id, local_date, reason_code
),

final as (
    select
        aggregated.machine_id,
        aggregated.local_date,
        aggregated.reason_code,
        aggregated.events,
        aggregated.down_seconds,
        -- A code missing from the catalogue counts as unplanned (contract).
        coalesce(reasons.is_planned, false) as planned,
        {{ etl_batch_id() }} as etl_batch_id
    from aggregated
    left join reasons on aggregated.reason_code = reasons.reason_code
)

select * from final
