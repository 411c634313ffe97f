{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.alarms'],
    quarantine_source_table='alarms',
    time_column_name='time',
    indexes=[{'columns': ['machine_id', 'time']}],
) }}

with

validated as (
    select * from {{ ref('int_alarms_validated') }}
),

final as (
    select
        bronze_id,
        machine_id,
        time,
        alarm_code,
        severity,
        {{ severity_class('severity_code') }} as severity_class,
        message,
        event_code as event,
        {{ etl_batch_id() }} as etl_batch_id,
        quarantine_reason
    from validated
)

select * from final
