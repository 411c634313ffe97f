{#- Example continuous aggregate: one row per machine per UTC hour of silver.fct_telemetry.
    On a server without
    continuous aggregates it is built as an incremental table (setu_build_aggregate_table).
    A continuous aggregate allows no CTEs (TimescaleDB restriction): one select. -#}
{{ config(
    materialized="continuous_aggregate",
    schema="rollups",
    time_column_name="bucket",
    materialized_only=false,
    refresh_policy={
        "start_offset": "3 days", "end_offset": "1 hour", "schedule_interval": "30 minutes",
    },
    compression={"segmentby": ["machine_id"], "orderby": "bucket desc", "after": "30 days"},
    indexes=[{"columns": ["machine_id", "bucket"]}],
) }}

select
    machine_id,
    {{ setu_time_bucket("1 hour", "time") }} as bucket,
    count(*) as sample_count,
    avg(spindle_speed_rpm) as spindle_speed_rpm_avg,
    max(spindle_load_pct) as spindle_load_pct_max,
    max(spindle_temp_c) as spindle_temp_c_max,
    max(motor_temp_c) as motor_temp_c_max,
    max(coolant_temp_c) as coolant_temp_c_max,
    count(power_kw) as power_kw_samples,
    avg(power_kw) as power_kw_avg,
    max(power_kw) as power_kw_max
from {{ ref("fct_telemetry") }}
group by machine_id, bucket
