{#- One batch of platform-extension readings, each with its quarantine reason (null when
    accepted). Unknown devices are not rejected: they are created on first sight. -#}
with

batch as (
    select * from {{ ref('stg_bronze__platform_extension') }}
    where {{ watermark_range('fct_platform_extension', 'bronze.platform_extension', 'bronze_id') }}
),

classified as (
    select
        batch.*,
        case
            when
                batch.value is null
                or batch.unit is null
                or (batch.device_id is null and batch.device_serial is null)
                then 'missing_value'
            when batch.unit_code not in ('ticks', 'mm') then 'invalid_code'
            when {{ is_future_time('batch') }} then 'future_time'
            -- A device is its numeric id when sent, else its serial.
            when
                batch.device_id is not null
                and {{ has_earlier_duplicate(
                    ref('stg_bronze__platform_extension'), 'batch', ['device_id'],
                    ['device_serial', 'value', 'unit', 'firmware']) }}
                then 'duplicate'
            when
                batch.device_id is null
                and {{ has_earlier_duplicate(
                    ref('stg_bronze__platform_extension'), 'batch', ['device_serial'],
                    ['device_id', 'value', 'unit', 'firmware']) }}
                then 'duplicate'
        end as quarantine_reason
    from batch
)

select * from classified
