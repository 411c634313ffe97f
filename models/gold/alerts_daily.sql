{{ config(
    watermark_sources=[{'relation': 'silver.fct_alarm_events', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'local_date', 'severity_class'],
) }}

with

changed_alarms as (
    select
        machine_id,
        time,
        severity_class
    from {{ ref('fct_alarm_events') }}
    where
        {{ watermark_range('silver.fct_alarm_events', 'etl_batch_id') }}
        and event = 'RAISED'
),

-- Not materialized: only the index probes below may touch the alarm events.
alarm_events as not materialized (
    select * from {{ ref('fct_alarm_events') }}
),

machines as (
    select * from {{ ref('int_machines_localized') }}
),

touched_groups as (
    select distinct
        changed_alarms.machine_id,
        changed_alarms.severity_class,
        machines.timezone,
        {{ local_date('changed_alarms.time', 'machines.timezone') }} as local_date
    from changed_alarms
    inner join machines on changed_alarms.machine_id = machines.machine_id
),

final as (
    select
        touched_groups.machine_id,
        touched_groups.local_date,
        touched_groups.severity_class,
        count(*) as alert_count,
        {{ etl_batch_id() }} as etl_batch_id
    from touched_groups
    inner join alarm_events
        on
            touched_groups.machine_id = alarm_events.machine_id
            and alarm_events.time
            >= {{ local_day_start('touched_groups.local_date', 'touched_groups.timezone') }}
            and alarm_events.time
            < {{ local_day_end('touched_groups.local_date', 'touched_groups.timezone') }}
            and touched_groups.severity_class = alarm_events.severity_class
    where alarm_events.event = 'RAISED'
    group by touched_groups.machine_id, touched_groups.local_date, touched_groups.severity_class
)

select * from final
