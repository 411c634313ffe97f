with

source as (
    select * from {{ source('master', 'downtime_reasons') }}
),

renamed as (
    select
        reason_code,
        description as reason_description,
        planned as is_planned
    from source
)

select * from renamed
