with

source as (
    select * from {{ source('master', 'shifts') }}
),

renamed as (
    select
        site_id,
        shift_id,
        shift_name,
        start_local,
        end_local,
        end_local <= start_local as is_overnight
    from source
)

select * from renamed
