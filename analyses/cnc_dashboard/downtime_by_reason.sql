{#- Dashboard panel "Downtime by reason": stoppages per reason over the seven site-local days
    up to the dashboard day (the local date of each stoppage's start), planned or not; codes
    missing from master.downtime_reasons show as unplanned with no description. Vars:
    dashboard_day, dashboard_machine_id, history_days (default 7). -#}
{{ config(enabled=target.type == 'postgres') }}

with

downtime as (
    select * from {{ ref('downtime_daily') }}
),

reasons as (
    select * from {{ ref('stg_master__downtime_reasons') }}
),

parameters as (
    select
        {{ dashboard_parameters('downtime', with_history_days=true) }}
),

history as (
    select downtime.*
    from downtime
    inner join parameters
        on
            downtime.local_date
            between parameters.local_date - (parameters.history_days - 1)
            and parameters.local_date
            and (
                parameters.machine_id is null
                or downtime.machine_id = parameters.machine_id
            )
),

final as (
    select
        history.reason_code,
        reasons.reason_description,
        bool_or(history.planned) as planned,
        sum(history.events) as events,
        count(distinct history.machine_id) as machines,
        round((sum(history.down_seconds) / 3600.0)::numeric, 2) as down_hours,
        round((sum(history.down_seconds) / sum(history.events) / 60.0)::numeric, 1)
            as mean_stop_minutes
    from history
    left join reasons on history.reason_code = reasons.reason_code
    group by history.reason_code, reasons.reason_description
)

select * from final
order by down_hours desc, reason_code asc
