{#- Dashboard panel "Alert list": every RAISED alarm of one site-local day, newest first, with
    its catalogue text and when the same code was next CLEARED on the machine (null while
    open). Vars: dashboard_day (default the latest day in Gold), dashboard_machine_id
    (default every machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

alarm_events as (
    select * from {{ ref('fct_alarm_events') }}
),

alarm_codes as (
    select * from {{ ref('dim_alarm_code') }}
),

utilization as (
    select * from {{ ref('machine_utilization_daily') }}
),

machines as (
    select * from {{ ref('dim_machine') }}
),

parameters as (
    select
        {{ dashboard_parameters('utilization') }}
),

day_bounds as (
    select
        machines.machine_id,
        machines.machine_code,
        parameters.local_date,
        {{ local_day_start('parameters.local_date', "coalesce(machines.timezone, 'UTC')") }}
            as day_start,
        {{ local_day_end('parameters.local_date', "coalesce(machines.timezone, 'UTC')") }}
            as day_end
    from machines
    cross join parameters
    where parameters.machine_id is null or machines.machine_id = parameters.machine_id
),

raised as (
    select
        day_bounds.machine_id,
        day_bounds.machine_code,
        day_bounds.local_date,
        alarm_events.bronze_id,
        alarm_events.time as raised_at,
        alarm_events.alarm_code,
        alarm_events.severity_class,
        alarm_events.message
    from day_bounds
    inner join alarm_events
        on
            day_bounds.machine_id = alarm_events.machine_id
            and day_bounds.day_start <= alarm_events.time
            and day_bounds.day_end > alarm_events.time
    where alarm_events.event = 'RAISED'
),

final as (
    select
        raised.machine_id,
        raised.machine_code,
        raised.local_date,
        raised.raised_at,
        cleared.cleared_at,
        raised.alarm_code,
        alarm_codes.alarm_description,
        raised.severity_class,
        raised.message
    from raised
    left join alarm_codes on raised.alarm_code = alarm_codes.alarm_code
    left join lateral (
        select alarm_events.time as cleared_at
        from alarm_events
        where
            alarm_events.machine_id = raised.machine_id
            and alarm_events.alarm_code = raised.alarm_code
            and alarm_events.event = 'CLEARED'
            and (alarm_events.time, alarm_events.bronze_id) > (raised.raised_at, raised.bronze_id)
        order by alarm_events.time asc, alarm_events.bronze_id asc
        limit 1
    ) as cleared on true
)

select * from final
order by raised_at desc, machine_id asc
