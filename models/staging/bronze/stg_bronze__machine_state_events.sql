with

source as (
    select * from {{ source('bronze', 'machine_state_events') }}
),

renamed as (
    select
        id as bronze_id,
        machine_id,
        time,
        ingested_at,
        gateway_id,
        state,
        {{ normalized_code('machine_state_events', 'state') }} as state_code,
        program_name
    from source
)

select * from renamed
