{#- Dashboard panel "OEE": per machine and the dashboard's site-local day, availability,
    performance, quality and OEE (gold.oee_daily), with the day's stoppages split into planned
    and unplanned hours and the reason that stopped the machine longest (gold.downtime_daily).
    Vars: dashboard_day (default the latest day in Gold), dashboard_machine_id (default every
    machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

oee as (
    select * from {{ ref('oee_daily') }}
),

downtime as (
    select * from {{ ref('downtime_daily') }}
),

machines as (
    select * from {{ ref('dim_machine') }}
),

parameters as (
    select {{ dashboard_parameters('oee') }}
),

day_oee as (
    select oee.*
    from oee
    inner join parameters
        on
            oee.local_date = parameters.local_date
            and (parameters.machine_id is null or oee.machine_id = parameters.machine_id)
),

day_downtime as (
    select
        downtime.machine_id,
        sum(downtime.down_seconds) filter (where downtime.planned) / 3600.0
            as planned_stop_hours,
        sum(downtime.down_seconds) filter (where not downtime.planned) / 3600.0
            as unplanned_stop_hours
    from downtime
    inner join parameters on downtime.local_date = parameters.local_date
    group by downtime.machine_id
),

top_reasons as (
    select distinct on (downtime.machine_id)
        downtime.machine_id,
        downtime.reason_code as top_reason_code
    from downtime
    inner join parameters on downtime.local_date = parameters.local_date
    order by downtime.machine_id asc, downtime.down_seconds desc, downtime.reason_code asc
),

final as (
    select
        day_oee.machine_id,
        machines.machine_code,
        day_oee.local_date,
        round((100 * day_oee.availability)::numeric, 1) as availability_pct,
        round((100 * day_oee.performance)::numeric, 1) as performance_pct,
        round((100 * day_oee.quality)::numeric, 1) as quality_pct,
        round((100 * day_oee.oee)::numeric, 1) as oee_pct,
        round((day_oee.planned_seconds / 3600.0)::numeric, 2) as planned_hours,
        round(coalesce(day_downtime.planned_stop_hours, 0)::numeric, 2)
            as planned_stop_hours,
        round(coalesce(day_downtime.unplanned_stop_hours, 0)::numeric, 2)
            as unplanned_stop_hours,
        top_reasons.top_reason_code,
        day_oee.cycles,
        day_oee.good_cycles
    from day_oee
    left join day_downtime on day_oee.machine_id = day_downtime.machine_id
    left join top_reasons on day_oee.machine_id = top_reasons.machine_id
    left join machines on day_oee.machine_id = machines.machine_id
)

select * from final
order by machine_id
