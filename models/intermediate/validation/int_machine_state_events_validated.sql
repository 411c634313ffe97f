{#- One batch of state events, each with its quarantine reason (null when accepted). -#}
with

batch as (
    select * from {{ ref('stg_bronze__machine_state_events') }}
    where {{ watermark_range('fct_state_intervals', 'bronze.machine_state_events', 'bronze_id') }}
),

machines as (
    select
        machine_id,
        site_id
    from {{ ref('stg_master__machines') }}
),

classified as (
    select
        batch.*,
        machines.site_id,
        case
            when machines.machine_id is null then 'unknown_machine'
            when batch.state is null then 'missing_value'
            when batch.state_code not in (
                'OFF', 'IDLE', 'RUNNING', 'SETUP', 'ALARM', 'MAINTENANCE'
            ) then 'invalid_code'
            when {{ is_future_time('batch') }} then 'future_time'
            when {{ has_earlier_duplicate(
                ref('stg_bronze__machine_state_events'), 'batch',
                ['machine_id'], ['state', 'program_name']) }} then 'duplicate'
        end as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
