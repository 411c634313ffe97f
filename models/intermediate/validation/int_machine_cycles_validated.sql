{#- One batch of cycles, each with its quarantine reason (null when accepted). -#}
with

batch as (
    select * from {{ ref('stg_bronze__machine_cycles') }}
    where {{ watermark_range('bronze.machine_cycles', 'bronze_id') }}
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
        {{ quarantine_reason(
            'machine_cycles', 'batch',
            unknown_machine='machines.machine_id is null',
            duplicate=has_earlier_duplicate(
                ref('stg_bronze__machine_cycles'), 'batch',
                bronze_contract('machine_cycles')['duplicate_key'],
                bronze_contract('machine_cycles')['duplicate_values'],
                interval_start=bronze_contract('machine_cycles')['interval_start']),
        ) }} as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
