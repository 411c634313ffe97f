{{ config(
    watermark_sources=[{'relation': 'silver.fct_telemetry', 'id_column': 'etl_batch_id'}],
    unique_key=['machine_id', 'bucket'],
) }}

with

changed_readings as (
    select
        machine_id,
        time
    from {{ ref('fct_telemetry') }}
    where
        {{ watermark_range('silver.fct_telemetry', 'etl_batch_id') }}
        and energy_kwh is not null
),

-- Not materialized: only the index probes below may touch the telemetry facts.
readings as not materialized (
    select
        machine_id,
        time,
        bronze_id,
        energy_kwh
    from {{ ref('fct_telemetry') }}
    where energy_kwh is not null
),

first_changed as (
    select
        machine_id,
        min(time) as first_time
    from changed_readings
    group by machine_id
),

-- The buckets of new readings, and of readings after a machine's earliest new one: a late
-- reading changes the delta of the reading that follows it.
touched_buckets as (
    select distinct
        machine_id,
        {{ setu_time_bucket('1 hour', 'time') }} as bucket
    from changed_readings
    union
    select distinct
        readings.machine_id,
        {{ setu_time_bucket('1 hour', 'readings.time') }} as bucket
    from first_changed
    inner join readings
        on
            first_changed.machine_id = readings.machine_id
            and first_changed.first_time < readings.time
),

-- Each bucket's readings plus the reading just before it, whose value its first delta needs.
reading_before_bucket as (
    select
        touched_buckets.machine_id,
        touched_buckets.bucket,
        previous_reading.time,
        previous_reading.bronze_id,
        previous_reading.energy_kwh
    from touched_buckets
    cross join lateral (
        select
            readings.time,
            readings.bronze_id,
            readings.energy_kwh
        from readings
        where
            readings.machine_id = touched_buckets.machine_id
            and readings.time < touched_buckets.bucket
        order by readings.time desc, readings.bronze_id desc
        limit 1
    ) as previous_reading
),

readings_in_bucket as (
    select
        touched_buckets.machine_id,
        touched_buckets.bucket,
        readings.time,
        readings.bronze_id,
        readings.energy_kwh
    from touched_buckets
    inner join readings
        on
            touched_buckets.machine_id = readings.machine_id
            and touched_buckets.bucket <= readings.time
            and touched_buckets.bucket + interval '1 hour' > readings.time
),

bucket_readings as (
    select * from reading_before_bucket
    union all
    select * from readings_in_bucket
),

deltas as (
    select
        machine_id,
        bucket,
        time,
        energy_kwh,
        lag(energy_kwh) over (
            partition by machine_id, bucket order by time, bronze_id
        ) as previous_kwh
    from bucket_readings
),

-- The first reading ever counts 0; a meter reset (negative delta) counts the new value.
reading_kwh as (
    select
        machine_id,
        bucket,
        case
            when previous_kwh is null then 0
            when energy_kwh < previous_kwh then energy_kwh
            else energy_kwh - previous_kwh
        end as kwh
    from deltas
    where time >= bucket
),

final as (
    select
        machine_id,
        bucket,
        sum(kwh) as kwh,
        {{ etl_batch_id() }} as etl_batch_id
    from reading_kwh
    group by machine_id, bucket
)

select * from final
