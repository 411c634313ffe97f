{#- Example hierarchical continuous aggregate: one row per machine per UTC day, from
    rollups.telemetry_hourly (a continuous aggregate on a continuous aggregate; its bucket is a
    multiple of the hourly one). The mean
    power is weighted by the hourly sample counts so it equals the mean over the raw rows. -#}
{{ config(
    materialized="continuous_aggregate",
    schema="rollups",
    time_column_name="bucket",
    materialized_only=false,
    refresh_policy={"start_offset": "7 days", "end_offset": "1 day", "schedule_interval": "1 hour"},
) }}

select
    machine_id,
    {{ setu_time_bucket("1 day", "bucket") }} as bucket,
    sum(sample_count) as sample_count,
    max(spindle_load_pct_max) as spindle_load_pct_max,
    max(spindle_temp_c_max) as spindle_temp_c_max,
    max(motor_temp_c_max) as motor_temp_c_max,
    max(coolant_temp_c_max) as coolant_temp_c_max,
    sum(power_kw_samples) as power_kw_samples,
    sum(power_kw_avg * power_kw_samples) / nullif(sum(power_kw_samples), 0) as power_kw_avg,
    max(power_kw_max) as power_kw_max
from {{ ref("telemetry_hourly") }}
-- The bucket expression, not its alias: GROUP BY would take the hourly input column `bucket`.
group by machine_id, {{ setu_time_bucket("1 day", "bucket") }}
