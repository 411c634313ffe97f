with

source as (
    select * from {{ source('bronze', 'platform_extension') }}
),

renamed as (
    select
        id as bronze_id,
        device_id,
        device_serial,
        time,
        ingested_at,
        gateway_id,
        value,
        unit,
        {{ normalized_code('platform_extension', 'unit') }} as unit_code,
        firmware
    from source
)

select * from renamed
