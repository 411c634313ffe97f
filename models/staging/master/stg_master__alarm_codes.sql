with

source as (
    select * from {{ source('master', 'alarm_codes') }}
),

renamed as (
    select
        alarm_code,
        description as alarm_description
    from source
)

select * from renamed
