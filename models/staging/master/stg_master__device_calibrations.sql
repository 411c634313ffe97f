with

source as (
    select * from {{ source('master', 'device_calibrations') }}
),

renamed as (
    select
        device_id,
        ticks_per_mm
    from source
)

select * from renamed
