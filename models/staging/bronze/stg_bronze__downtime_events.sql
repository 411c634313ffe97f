with

source as (
    select * from {{ source('bronze', 'downtime_events') }}
),

renamed as (
    select
        id as bronze_id,
        machine_id,
        time,
        ingested_at,
        gateway_id,
        down_start,
        reason_code,
        program_name
    from source
)

select * from renamed
