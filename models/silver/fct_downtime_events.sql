{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.downtime_events'],
    quarantine_source_table='downtime_events',
    time_column_name='down_end',
    indexes=[{'columns': ['machine_id', 'down_start']}],
) }}

with

validated as (
    select * from {{ ref('int_downtime_events_validated') }}
),

final as (
    select
        bronze_id,
        machine_id,
        down_start,
        time as down_end,
        -- quarantined rows pass here too, and theirs may be infinite
        case
            when quarantine_reason is null
                then extract(epoch from time - down_start)::double precision
        end as down_seconds,
        reason_code,
        program_name,
        silver.fn_get_shift_id(site_id, down_start) as shift_id,
        {{ etl_batch_id() }} as etl_batch_id,
        quarantine_reason
    from validated
)

select * from final
