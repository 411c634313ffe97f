{#- IoT rollout: readings and devices per UTC day in the legacy format (firmware sending
    ticks) and the new one (mm), with the new format's share of readings. -#}
{{ config(enabled=target.type == 'postgres') }}

with

readings as (
    select * from {{ ref('fct_platform_extension') }}
),

per_day as (
    select
        (readings.time at time zone 'UTC')::date as reading_date,
        count(*) filter (where readings.unit = 'ticks') as legacy_readings,
        count(*) filter (where readings.unit = 'mm') as new_readings,
        count(distinct readings.device_id) filter (where readings.unit = 'ticks')
            as legacy_devices,
        count(distinct readings.device_id) filter (where readings.unit = 'mm') as new_devices
    from readings
    group by (readings.time at time zone 'UTC')::date
),

final as (
    select
        reading_date,
        legacy_readings,
        new_readings,
        legacy_devices,
        new_devices,
        round(100.0 * new_readings / nullif(legacy_readings + new_readings, 0), 1)
            as new_format_pct
    from per_day
)

select * from final
order by reading_date
