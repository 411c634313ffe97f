{{ config(
    materialized='watermark_incremental',
    watermark_sources=['bronze.machine_telemetry'],
    quarantine_source_table='machine_telemetry',
    time_column_name='time',
    indexes=[{'columns': ['machine_id', 'time']}],
) }}

with

validated as (
    select * from {{ ref('int_machine_telemetry_validated') }}
),

final as (
    select
        bronze_id,
        machine_id,
        time,
        spindle_speed_rpm,
        feed_rate_mm_min,
        spindle_load_pct,
        spindle_temp_c,
        motor_temp_c,
        coolant_temp_c,
        power_kw,
        energy_kwh,
        {{ etl_batch_id() }} as etl_batch_id,
        quarantine_reason
    from validated
)

select * from final
