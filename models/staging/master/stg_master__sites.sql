with

source as (
    select * from {{ source('master', 'sites') }}
),

renamed as (
    select
        site_id,
        site_code,
        timezone
    from source
)

select * from renamed
