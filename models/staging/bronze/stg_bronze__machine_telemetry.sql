with

source as (
    select * from {{ source('bronze', 'machine_telemetry') }}
),

renamed as (
    select
        id as bronze_id,
        machine_id,
        time,
        ingested_at,
        gateway_id,
        spindle_speed_rpm,
        feed_rate_mm_min,
        spindle_load_pct,
        spindle_temp_c,
        motor_temp_c,
        coolant_temp_c,
        power_kw,
        energy_kwh
    from source
)

select * from renamed
