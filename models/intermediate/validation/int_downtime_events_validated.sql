{#- One batch of stoppages, each with its quarantine reason (null when accepted). A reason
    code missing from master.downtime_reasons is accepted (contract: unplanned until an
    operator adds it), so downtime has no invalid_code rule, and out_of_range only for the
    contract's hostile values (max_chars, max_event_age). -#}
with

batch as (
    select * from {{ ref('stg_bronze__downtime_events') }}
    where {{ watermark_range('bronze.downtime_events', 'bronze_id') }}
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
            'downtime_events', 'batch',
            unknown_machine='machines.machine_id is null',
            duplicate=has_earlier_duplicate(
                ref('stg_bronze__downtime_events'), 'batch',
                bronze_contract('downtime_events')['duplicate_key'],
                bronze_contract('downtime_events')['duplicate_values'],
                interval_start=bronze_contract('downtime_events')['interval_start']),
        ) }} as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
