with

source as (
    select * from {{ source('master', 'machines') }}
),

renamed as (
    select
        machine_id,
        machine_code,
        site_id
    from source
)

select * from renamed
