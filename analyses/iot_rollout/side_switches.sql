{#- IoT rollout: every switch of a device between LEFT and RIGHT (the sign of the value),
    also across a CENTER reading between them and across the change of format, compared in
    mm. One row per switch. -#}
{{ config(enabled=target.type == 'postgres') }}

with

readings as (
    select * from {{ ref('fct_platform_extension') }}
),

sided as (
    select
        device_id,
        time,
        bronze_id,
        side,
        unit,
        value_mm
    from readings
    where side in ('LEFT', 'RIGHT')
),

with_previous as (
    select
        device_id,
        time,
        side,
        unit,
        value_mm,
        lag(side) over by_time as previous_side,
        lag(time) over by_time as previous_time,
        lag(value_mm) over by_time as previous_value_mm,
        lag(unit) over by_time as previous_unit
    from sided
    window by_time as (partition by device_id order by time, bronze_id)
),

final as (
    select
        device_id,
        time as switched_at,
        previous_side as from_side,
        side as to_side,
        previous_time as last_reading_before_at,
        round(previous_value_mm::numeric, 3) as value_mm_before,
        round(value_mm::numeric, 3) as value_mm_after,
        previous_unit != unit as is_across_formats
    from with_previous
    where previous_side is not null and previous_side != side
)

select * from final
order by device_id, switched_at
