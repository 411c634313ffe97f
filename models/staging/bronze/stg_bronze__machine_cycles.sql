with

source as (
    select * from {{ source('bronze', 'machine_cycles') }}
),

renamed as (
    select
        id as bronze_id,
        machine_id,
        time,
        ingested_at,
        gateway_id,
        cycle_start,
        program_name,
        part_count,
        result,
        {{ normalized_code('machine_cycles', 'result') }} as result_code,
        std_cycle_seconds,
        std_load_unload_seconds,
        down_threshold_seconds
    from source
)

select * from renamed
