{#- One batch of platform-extension readings, each with its quarantine reason (null when
    accepted). Unknown devices are not rejected: they are created on first sight. -#}
with

batch as (
    select * from {{ ref('stg_bronze__platform_extension') }}
    where {{ watermark_range('bronze.platform_extension', 'bronze_id') }}
),

classified as (
    select
        batch.*,
        -- No unknown_machine: devices are created on first sight. A device is its numeric
        -- id when sent, else its serial.
        {{ quarantine_reason(
            'platform_extension', 'batch',
            duplicate=[
                'batch.device_id is not null and ' ~ has_earlier_duplicate(
                    ref('stg_bronze__platform_extension'), 'batch', ['device_id'],
                    bronze_contract('platform_extension')['duplicate_values']),
                'batch.device_id is null and ' ~ has_earlier_duplicate(
                    ref('stg_bronze__platform_extension'), 'batch', ['device_serial'],
                    ['device_id', 'value', 'unit', 'firmware']),
            ],
        ) }} as quarantine_reason
    from batch
)

select * from classified
