{#- IoT rollout: devices seen in both formats (upgraded during the rollout), with their last
    legacy (ticks) and first new-format (mm) reading; `is_clean_cutover` is false when a
    device sent ticks again after its first mm reading. -#}
{{ config(enabled=target.type == 'postgres') }}

with

readings as (
    select * from {{ ref('fct_platform_extension') }}
),

devices as (
    select * from {{ ref('dim_device') }}
),

per_device as (
    select
        device_id,
        count(*) filter (where unit = 'ticks') as legacy_readings,
        count(*) filter (where unit = 'mm') as new_readings,
        min(time) filter (where unit = 'ticks') as first_legacy_at,
        max(time) filter (where unit = 'ticks') as last_legacy_at,
        min(time) filter (where unit = 'mm') as first_new_at,
        (array_agg(firmware order by time asc) filter (where unit = 'ticks'))[1]
            as legacy_firmware,
        (array_agg(firmware order by time desc) filter (where unit = 'mm'))[1] as new_firmware
    from readings
    group by device_id
    having count(*) filter (where unit = 'ticks') > 0 and count(*) filter (where unit = 'mm') > 0
),

final as (
    select
        per_device.device_id,
        devices.device_serial,
        per_device.legacy_readings,
        per_device.new_readings,
        per_device.first_legacy_at,
        per_device.last_legacy_at,
        per_device.first_new_at,
        per_device.last_legacy_at < per_device.first_new_at as is_clean_cutover,
        per_device.legacy_firmware,
        per_device.new_firmware
    from per_device
    left join devices on per_device.device_id = devices.device_id
)

select * from final
order by first_new_at, device_id
