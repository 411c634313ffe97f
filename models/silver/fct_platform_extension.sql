{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.platform_extension'],
    quarantine_source_table='platform_extension',
    time_column_name='time',
    after_batch=['register_new_devices'],
    indexes=[{'columns': ['device_id', 'time']}],
) }}

with

validated as (
    select * from {{ ref('int_platform_extension_validated') }}
),

devices as (
    select * from {{ ref('dim_device') }}
),

calibrations as (
    select * from {{ ref('stg_master__device_calibrations') }}
),

-- A serial already tied to a numeric id (in Silver or earlier in this batch) keeps it.
serial_owners as (
    select distinct on (device_serial)
        device_serial,
        device_id
    from (
        select
            device_serial,
            device_id,
            first_bronze_id as seen_at_bronze_id
        from devices
        where device_serial is not null
        union all
        select
            device_serial,
            device_id,
            bronze_id as seen_at_bronze_id
        from validated
        where
            quarantine_reason is null
            and device_serial is not null
            and device_id is not null
    ) as known_serials
    order by device_serial asc, seen_at_bronze_id asc
),

resolved as (
    select
        validated.*,
        coalesce(
            validated.device_id,
            serial_owners.device_id,
            {{ device_id_from_serial('validated.device_serial') }}
        ) as resolved_device_id,
        case
            when validated.device_id is not null then 'device_id'
            when serial_owners.device_id is not null then 'serial_of_known_device'
            else 'serial'
        end as device_created_from
    from validated
    left join serial_owners
        on
            validated.device_id is null
            and validated.device_serial = serial_owners.device_serial
),

final as (
    select
        resolved.bronze_id,
        resolved.resolved_device_id as device_id,
        resolved.device_serial,
        resolved.time,
        resolved.value,
        case
            when resolved.unit_code = 'ticks'
                then resolved.value / coalesce(calibrations.ticks_per_mm, 20.0)
            else resolved.value
        end as value_mm,
        case
            when resolved.value < 0 then 'LEFT'
            when resolved.value > 0 then 'RIGHT'
            else 'CENTER'
        end as side,
        resolved.unit_code as unit,
        resolved.firmware,
        resolved.device_created_from,
        {{ etl_batch_id() }} as etl_batch_id,
        resolved.quarantine_reason
    from resolved
    left join calibrations on resolved.resolved_device_id = calibrations.device_id
)

select * from final
