{#- IoT rollout: the most recent readings of every device in one unit (mm), whatever format
    the firmware sent, with the side. "Recent" is the window (var recent_window, default
    '1 hour') before the latest reading, so it also works on historic data. -#}
{{ config(enabled=target.type == 'postgres') }}

with

readings as (
    select * from {{ ref('fct_platform_extension') }}
),

parameters as (
    select
        (select max(readings.time) as latest_at from readings)
        - {{ sql_literal(var('recent_window', '1 hour')) }}::interval as window_start
),

final as (
    select
        readings.device_id,
        readings.device_serial,
        readings.time,
        round(readings.value_mm::numeric, 3) as value_mm,
        readings.side,
        readings.unit as sent_unit,
        readings.value as sent_value,
        readings.firmware
    from readings
    inner join parameters on readings.time >= parameters.window_start
)

select * from final
order by device_id, time
