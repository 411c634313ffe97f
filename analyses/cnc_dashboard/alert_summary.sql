{#- Dashboard panel "Alert summary": RAISED alarms per machine and severity class on one
    site-local day (one row per machine, a column per class). Vars: dashboard_day (default
    the latest day in Gold), dashboard_machine_id (default every machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

alerts as (
    select * from {{ ref('alerts_daily') }}
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

final as (
    select
        machines.machine_id,
        machines.machine_code,
        parameters.local_date,
        {%- for class in ['emergency', 'error', 'warning', 'other'] %}
            coalesce(sum(alerts.alert_count) filter (
                where alerts.severity_class = '{{ class }}'
            ), 0) as {{ class }}_count,
        {%- endfor %}
        coalesce(sum(alerts.alert_count), 0) as total_count
    from machines
    cross join parameters
    left join alerts
        on
            machines.machine_id = alerts.machine_id
            and parameters.local_date = alerts.local_date
    where parameters.machine_id is null or machines.machine_id = parameters.machine_id
    group by machines.machine_id, machines.machine_code, parameters.local_date
)

select * from final
order by machine_id
