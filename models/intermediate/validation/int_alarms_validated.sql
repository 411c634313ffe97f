{#- One batch of alarm events, each with its quarantine reason (null when accepted). -#}
with

batch as (
    select * from {{ ref('stg_bronze__alarms') }}
    where {{ watermark_range('fct_alarm_events', 'bronze.alarms', 'bronze_id') }}
),

machines as (
    select machine_id
    from {{ ref('stg_master__machines') }}
),

classified as (
    select
        batch.*,
        case
            when machines.machine_id is null then 'unknown_machine'
            when
                batch.alarm_code is null
                or batch.severity is null
                or batch.event is null
                then 'missing_value'
            when batch.event_code not in ('RAISED', 'CLEARED') then 'invalid_code'
            when {{ is_future_time('batch') }} then 'future_time'
            when {{ has_earlier_duplicate(
                ref('stg_bronze__alarms'), 'batch', ['machine_id'],
                ['alarm_code', 'severity', 'message', 'event']) }} then 'duplicate'
        end as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
