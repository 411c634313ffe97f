{#- Platform-extension devices, created on first sight: legacy devices under their numeric id,
    serial-only devices under the id fct_platform_extension derived from the serial. A device
    keeps the first reading that created it (by bronze_id); its serial is the first one any of
    its readings sent, so the row does not depend on batch boundaries. -#}
{{ config(
    materialized='watermark_incremental',
    watermark_sources=[
        {'relation': 'silver.fct_platform_extension', 'id_column': 'etl_batch_id'},
    ],
    unique_key=['device_id'],
) }}

with

changed_readings as (
    select
        device_id,
        device_serial,
        device_created_from,
        time,
        bronze_id
    from {{ ref('fct_platform_extension') }}
    where {{ watermark_range('silver.fct_platform_extension', 'etl_batch_id') }}
),

-- Not materialized: only the key probes below may touch the devices already known.
known_devices as not materialized (
    select * from {{ this }}
),

first_serials as (
    select distinct on (device_id)
        device_id,
        device_serial
    from changed_readings
    where device_serial is not null
    order by device_id asc, bronze_id asc
),

first_readings as (
    select distinct on (device_id)
        device_id,
        device_created_from as created_from,
        time as first_seen_at,
        bronze_id as first_bronze_id
    from changed_readings
    order by device_id asc, bronze_id asc
),

first_sightings as (
    select
        first_readings.*,
        first_serials.device_serial
    from first_readings
    left join first_serials on first_readings.device_id = first_serials.device_id
),

final as (
    select
        first_sightings.device_id,
        coalesce(
            known_devices.device_serial, first_sightings.device_serial
        ) as device_serial,
        coalesce(known_devices.created_from, first_sightings.created_from) as created_from,
        coalesce(known_devices.first_seen_at, first_sightings.first_seen_at) as first_seen_at,
        coalesce(
            known_devices.first_bronze_id, first_sightings.first_bronze_id
        ) as first_bronze_id
    from first_sightings
    left join known_devices on first_sightings.device_id = known_devices.device_id
)

select * from final
