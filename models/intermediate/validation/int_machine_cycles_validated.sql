{#- One batch of cycles, each with its quarantine reason (null when accepted). -#}
with

batch as (
    select * from {{ ref('stg_bronze__machine_cycles') }}
    where {{ watermark_range('fct_machine_cycles', 'bronze.machine_cycles', 'bronze_id') }}
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
            when
                batch.cycle_start is null
                or batch.part_count is null
                or batch.result is null
                then 'missing_value'
            when batch.result_code not in ('GOOD', 'SCRAP') then 'invalid_code'
            when batch.cycle_start > batch.time then 'bad_interval'
            when {{ is_future_time('batch') }} then 'future_time'
            when {{ has_earlier_duplicate(
                ref('stg_bronze__machine_cycles'), 'batch', ['machine_id'],
                ['cycle_start', 'program_name', 'part_count', 'result', 'std_cycle_seconds',
                 'std_load_unload_seconds', 'down_threshold_seconds']) }} then 'duplicate'
        end as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
