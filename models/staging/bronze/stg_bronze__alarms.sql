with

source as (
    select * from {{ source('bronze', 'alarms') }}
),

renamed as (
    select
        id as bronze_id,
        machine_id,
        time,
        ingested_at,
        gateway_id,
        alarm_code,
        severity,
        lower(trim(severity)) as severity_code,
        message,
        event,
        {{ normalized_code('alarms', 'event') }} as event_code
    from source
)

select * from renamed
