{#- One batch of telemetry samples, each with its quarantine reason (null when accepted). -#}
{%- set measures = ['spindle_speed_rpm', 'feed_rate_mm_min', 'spindle_load_pct',
    'spindle_temp_c', 'motor_temp_c', 'coolant_temp_c', 'power_kw', 'energy_kwh'] %}
with

batch as (
    select * from {{ ref('stg_bronze__machine_telemetry') }}
    where {{ watermark_range('fct_telemetry', 'bronze.machine_telemetry', 'bronze_id') }}
),

machines as (
    select machine_id
    from {{ ref('stg_master__machines') }}
),

classified as (
    select
        batch.*,
        case
            when machines.machine_id is null then 'unknown_machine'
            when coalesce({{ measures | join(', ') }}) is null then 'missing_value'
            when
                {{ is_out_of_range('batch.spindle_temp_c', -50, 300) }}
                or {{ is_out_of_range('batch.motor_temp_c', -50, 300) }}
                or {{ is_out_of_range('batch.coolant_temp_c', -50, 300) }}
                or {{ is_out_of_range('batch.spindle_speed_rpm', 0, 60000) }}
                or {{ is_out_of_range('batch.power_kw', low=0) }}
                or {{ is_out_of_range('batch.feed_rate_mm_min', low=0) }}
                or {{ is_out_of_range('batch.spindle_load_pct', 0, 1000) }}
                then 'out_of_range'
            when {{ is_future_time('batch') }} then 'future_time'
            when {{ has_earlier_duplicate(
                ref('stg_bronze__machine_telemetry'), 'batch', ['machine_id'], measures) }}
                then 'duplicate'
        end as quarantine_reason
    from batch
    left join machines on batch.machine_id = machines.machine_id
)

select * from classified
