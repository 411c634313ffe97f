{#- One batch of telemetry samples, each with its quarantine reason (null when accepted).
    Telemetry is the high-volume table, so the duplicate rule avoids a Bronze probe per row:
    duplicates inside the batch come from a window over the batch, and a sample can repeat
    an earlier batch's row only if its machine already has an accepted sample at or after
    its time in Silver (the earliest of a set of identical valid rows is always accepted),
    so only those samples probe Bronze. -#}
{%- set measures = bronze_contract('machine_telemetry')['duplicate_values'] %}
with

batch as (
    select * from {{ ref('stg_bronze__machine_telemetry') }}
    where {{ watermark_range('bronze.machine_telemetry', 'bronze_id') }}
),

machines as (
    select machine_id
    from {{ ref('stg_master__machines') }}
),

batch_machines as (
    select distinct machine_id
    from batch
),

-- The fact is read by name, not ref(): it is this model's consumer, and only its latest
-- sample per machine is needed (one index probe per machine).
latest_accepted as (
    select
        batch_machines.machine_id,
        latest.time as latest_accepted_at
    from batch_machines
    cross join lateral (
        select accepted.time
        from silver.fct_telemetry as accepted
        where accepted.machine_id = batch_machines.machine_id
        order by accepted.time desc
        limit 1
    ) as latest
),

flagged as (
    select
        batch.*,
        latest_accepted.latest_accepted_at,
        count(*) filter (
            where not {{ is_future_time('batch') }}
            and not {{ is_before_event_horizon('batch', ['time']) }}
        ) over (
            partition by batch.machine_id, batch.time, {{ measures | join(', ') }}
            order by batch.bronze_id
            rows between unbounded preceding and 1 preceding
        ) as earlier_valid_copies_in_batch
    from batch
    left join latest_accepted on batch.machine_id = latest_accepted.machine_id
),

classified as (
    select
        flagged.*,
        {{ quarantine_reason(
            'machine_telemetry', 'flagged',
            unknown_machine='machines.machine_id is null',
            duplicate=[
                'flagged.earlier_valid_copies_in_batch > 0',
                "flagged.time <= coalesce(flagged.latest_accepted_at, '-infinity') and "
                ~ has_earlier_duplicate(
                    ref('stg_bronze__machine_telemetry'), 'flagged',
                    bronze_contract('machine_telemetry')['duplicate_key'], measures),
            ],
        ) }} as quarantine_reason
    from flagged
    left join machines on flagged.machine_id = machines.machine_id
)

select
    bronze_id,
    machine_id,
    time,
    ingested_at,
    gateway_id,
    {{ measures | join(',\n    ') }},
    quarantine_reason
from classified
