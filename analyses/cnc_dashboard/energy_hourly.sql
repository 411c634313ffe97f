{#- Dashboard panel "Energy": kWh per UTC hour of each machine over one site-local day, with
    the day's total and its peak hour marked. Vars: dashboard_day (default the latest day in
    Gold), dashboard_machine_id (default every machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

energy_hourly as (
    select * from {{ ref('energy_hourly') }}
),

energy_daily as (
    select * from {{ ref('energy_daily') }}
),

machines as (
    select * from {{ ref('dim_machine') }}
),

parameters as (
    select
        {{ dashboard_parameters('energy_daily') }}
),

days as (
    select
        energy_daily.machine_id,
        machines.machine_code,
        energy_daily.local_date,
        energy_daily.kwh_total,
        energy_daily.peak_hour,
        energy_daily.peak_kwh,
        {{ local_day_start('energy_daily.local_date', "coalesce(machines.timezone, 'UTC')") }}
            as day_start,
        {{ local_day_end('energy_daily.local_date', "coalesce(machines.timezone, 'UTC')") }}
            as day_end
    from energy_daily
    inner join parameters
        on
            energy_daily.local_date = parameters.local_date
            and (
                parameters.machine_id is null
                or energy_daily.machine_id = parameters.machine_id
            )
    left join machines on energy_daily.machine_id = machines.machine_id
),

final as (
    select
        days.machine_id,
        days.machine_code,
        days.local_date,
        energy_hourly.bucket,
        round(energy_hourly.kwh::numeric, 3) as kwh,
        energy_hourly.bucket = days.peak_hour as is_peak_hour,
        days.peak_hour,
        round(days.peak_kwh::numeric, 3) as peak_kwh,
        round(days.kwh_total::numeric, 3) as day_kwh_total
    from days
    inner join energy_hourly
        on
            days.machine_id = energy_hourly.machine_id
            and days.day_start <= energy_hourly.bucket
            and days.day_end > energy_hourly.bucket
)

select * from final
order by machine_id, bucket
