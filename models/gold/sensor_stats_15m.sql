{#- Percentiles for box plots, which continuous aggregates cannot compute: an incremental
    model on every server. -#}
{{ config(
    watermark_sources=[{'relation': 'silver.fct_telemetry', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'sensor', 'bucket'],
) }}
{%- set sensors = [
    'spindle_temp_c', 'motor_temp_c', 'coolant_temp_c', 'spindle_load_pct', 'power_kw',
] %}

with

changed_samples as (
    select
        machine_id,
        time
    from {{ ref('fct_telemetry') }}
    where {{ watermark_range('silver.fct_telemetry', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the telemetry facts.
telemetry as not materialized (
    select * from {{ ref('fct_telemetry') }}
),

touched_buckets as (
    select distinct
        machine_id,
        {{ setu_time_bucket('15 minutes', 'time') }} as bucket
    from changed_samples
),

samples as (
    select
        touched_buckets.machine_id,
        touched_buckets.bucket,
        sensor_values.sensor,
        sensor_values.value
    from touched_buckets
    inner join telemetry
        on
            touched_buckets.machine_id = telemetry.machine_id
            and touched_buckets.bucket <= telemetry.time
            and telemetry.time < touched_buckets.bucket + interval '15 minutes'
    cross join
        lateral (
            values
            {%- for sensor in sensors %}
                ('{{ sensor }}', telemetry.{{ sensor }}){{ "," if not loop.last }}
            {%- endfor %}
        ) as sensor_values (sensor, value)
    where sensor_values.value is not null
),

final as (
    select
        machine_id,
        sensor,
        bucket,
        count(*) as sample_count,
        min(value) as min_value,
        percentile_cont(0.25) within group (order by value) as p25,
        percentile_cont(0.5) within group (order by value) as median,
        percentile_cont(0.75) within group (order by value) as p75,
        max(value) as max_value,
        avg(value) as mean_value,
        {{ etl_batch_id() }} as etl_batch_id
    from samples
    group by machine_id, sensor, bucket
)

select * from final
