{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.platform_extension'],
    quarantine_source_table='platform_extension',
    time_column_name='time',
    indexes=[
        {'columns': ['device_id', 'time']},
        {'columns': ['device_serial', 'bronze_id']},
    ],
) }}

with

validated as (
    select * from {{ ref('int_platform_extension_validated') }}
),

calibrations as (
    select * from {{ ref('stg_master__device_calibrations') }}
),

-- A serial-only reading belongs to the numeric device that an earlier accepted reading (lower
-- bronze_id) sent with the same serial, else to the device created for the serial. Only
-- earlier readings count, so the answer is the same whatever the batch boundaries.
existing_pairs as not materialized (
    select
        device_serial,
        device_id,
        bronze_id
    from {{ this }}
    where device_created_from = 'device_id' and device_serial is not null
),

-- The batch's first pairing of each serial: the earliest pairing earlier than a reading is
-- this one whenever it is earlier at all, so a hash join replaces a scan per reading.
batch_first_pairs as (
    select distinct on (device_serial)
        device_serial,
        device_id,
        bronze_id
    from validated
    where
        quarantine_reason is null
        and device_serial is not null
        and device_id is not null
    order by device_serial asc, bronze_id asc
),

-- Readings already written are all earlier than the batch: their pairing comes first.
resolved as (
    select
        validated.*,
        coalesce(
            validated.device_id,
            existing_owner.device_id,
            batch_owner.device_id,
            {{ device_id_from_serial('validated.device_serial') }}
        ) as resolved_device_id,
        case
            when validated.device_id is not null then 'device_id'
            when coalesce(existing_owner.device_id, batch_owner.device_id) is not null
                then 'serial_of_known_device'
            else 'serial'
        end as device_created_from
    from validated
    left join lateral (
        select existing_pairs.device_id
        from existing_pairs
        where
            validated.device_id is null
            and existing_pairs.device_serial = validated.device_serial
        order by existing_pairs.bronze_id asc
        limit 1
    ) as existing_owner on true
    left join batch_first_pairs as batch_owner
        on
            validated.device_id is null
            and validated.device_serial = batch_owner.device_serial
            and validated.bronze_id > batch_owner.bronze_id
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
