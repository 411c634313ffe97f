{#- Dashboard panel "Utilization": hours per state and utilization % of each machine on one
    site-local day. Vars: dashboard_day (YYYY-MM-DD; default the latest day in Gold),
    dashboard_machine_id (default every machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

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

final as (
    select
        utilization.machine_id,
        machines.machine_code,
        utilization.local_date,
        round((utilization.running_seconds / 3600)::numeric, 2) as running_hours,
        round((utilization.idle_seconds / 3600)::numeric, 2) as idle_hours,
        round((utilization.setup_seconds / 3600)::numeric, 2) as setup_hours,
        round((utilization.alarm_seconds / 3600)::numeric, 2) as alarm_hours,
        round((utilization.maintenance_seconds / 3600)::numeric, 2) as maintenance_hours,
        round((utilization.off_seconds / 3600)::numeric, 2) as off_hours,
        round(utilization.utilization_pct::numeric, 1) as utilization_pct
    from utilization
    inner join parameters
        on
            utilization.local_date = parameters.local_date
            and (
                parameters.machine_id is null
                or utilization.machine_id = parameters.machine_id
            )
    left join machines on utilization.machine_id = machines.machine_id
)

select * from final
order by machine_id
