{#- Dashboard panel "Temperatures": box plots per 15-minute UTC bucket of the spindle, motor
    and coolant temperatures (°C) of each machine over one site-local day. Vars:
    dashboard_day (default the latest day in Gold), dashboard_machine_id (default every
    machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

sensor_stats as (
    select * from {{ ref('sensor_stats_15m') }}
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

final as (
    select
        day_bounds.machine_id,
        day_bounds.machine_code,
        day_bounds.local_date,
        sensor_stats.sensor,
        sensor_stats.bucket,
        sensor_stats.sample_count,
        sensor_stats.min_value as min_c,
        sensor_stats.p25 as p25_c,
        sensor_stats.median as median_c,
        sensor_stats.p75 as p75_c,
        sensor_stats.max_value as max_c,
        sensor_stats.mean_value as mean_c
    from day_bounds
    inner join sensor_stats
        on
            day_bounds.machine_id = sensor_stats.machine_id
            and day_bounds.day_start <= sensor_stats.bucket
            and day_bounds.day_end > sensor_stats.bucket
    where sensor_stats.sensor in ('spindle_temp_c', 'motor_temp_c', 'coolant_temp_c')
)

select * from final
order by machine_id, sensor, bucket
