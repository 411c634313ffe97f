{#- One batch of alarm events, each with its quarantine reason (null when accepted). -#}
with

batch as (
    select * from {{ ref('stg_bronze__alarms') }}
    where {{ watermark_range('bronze.alarms', 'bronze_id') }}
),

machines as (
    select machine_id
    from {{ ref('stg_master__machines') }}
),

classified as (
    select
        batch.*,
        {{ quarantine_reason(
            'alarms', 'batch',
            unknown_machine='machines.machine_id is null',
            duplicate=has_earlier_duplicate(
                ref('stg_bronze__alarms'), 'batch',
                bronze_contract('alarms')['duplicate_key'],
                bronze_contract('alarms')['duplicate_values']),
        ) }} as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
