{#- The web app's live status: one row per machine, recomputed for the machines whose state
    intervals, telemetry or alarms changed in the batch (index probes per machine), read by
    primary key. Machines with no data yet get their row after each batch and from the
    post-hook. -#}
{{ config(
    watermark_sources=[
        {'relation': 'silver.fct_state_intervals', 'id_column': 'etl_batch_id'},
        {'relation': 'silver.fct_telemetry', 'id_column': 'etl_batch_id'},
        {'relation': 'silver.fct_alarm_events', 'id_column': 'etl_batch_id'},
    ],
    unique_key=['machine_id'],
    after_batch=['add_missing_machine_status_rows'],
    post_hook="{{ add_missing_machine_status_rows() }}",
) }}
-- depends_on: {{ ref('stg_master__machines') }}
{%- set measures = ['spindle_speed_rpm', 'feed_rate_mm_min', 'spindle_load_pct',
    'spindle_temp_c', 'motor_temp_c', 'coolant_temp_c', 'power_kw', 'energy_kwh'] %}

with

changed_machines as (
    select machine_id
    from {{ ref('fct_state_intervals') }}
    where {{ watermark_range('silver.fct_state_intervals', 'etl_batch_id') }}
    union
    select machine_id
    from {{ ref('fct_telemetry') }}
    where {{ watermark_range('silver.fct_telemetry', 'etl_batch_id') }}
    union
    select machine_id
    from {{ ref('fct_alarm_events') }}
    where {{ watermark_range('silver.fct_alarm_events', 'etl_batch_id') }}
),

-- Not materialized: only the index probes below may touch the facts.
state_intervals as not materialized (
    select * from {{ ref('fct_state_intervals') }}
),

telemetry as not materialized (
    select * from {{ ref('fct_telemetry') }}
),

alarm_events as not materialized (
    select * from {{ ref('fct_alarm_events') }}
),

current_state as (
    select
        changed_machines.machine_id,
        latest_interval.state,
        latest_interval.valid_from as state_since,
        latest_interval.program_name
    from changed_machines
    left join lateral (
        select
            state_intervals.state,
            state_intervals.valid_from,
            state_intervals.program_name
        from state_intervals
        where state_intervals.machine_id = changed_machines.machine_id
        order by state_intervals.valid_from desc, state_intervals.bronze_id desc
        limit 1
    ) as latest_interval on true
),

latest_telemetry as (
    select
        changed_machines.machine_id,
        {%- for measure in measures %}
            (
                select telemetry.{{ measure }}
                from telemetry
                where
                    telemetry.machine_id = changed_machines.machine_id
                    and telemetry.{{ measure }} is not null
                order by telemetry.time desc, telemetry.bronze_id desc
                limit 1
            ) as {{ measure }},
        {%- endfor %}
        (
            select max(telemetry.time) as sample_time
            from telemetry
            where telemetry.machine_id = changed_machines.machine_id
        ) as last_telemetry_at
    from changed_machines
),

open_alarms as (
    select
        changed_machines.machine_id,
        count(*) filter (where latest_per_code.event = 'RAISED') as open_alarm_count
    from changed_machines
    left join lateral (
        select distinct on (alarm_events.alarm_code) alarm_events.event
        from alarm_events
        where alarm_events.machine_id = changed_machines.machine_id
        order by
            alarm_events.alarm_code asc,
            alarm_events.time desc,
            alarm_events.bronze_id desc
    ) as latest_per_code on true
    group by changed_machines.machine_id
),

final as (
    select
        current_state.machine_id,
        current_state.state,
        current_state.state_since,
        current_state.program_name,
        latest_telemetry.last_telemetry_at,
        {%- for measure in measures %}
            latest_telemetry.{{ measure }},
        {%- endfor %}
        open_alarms.open_alarm_count,
        now() as refreshed_at,
        {{ etl_batch_id() }} as etl_batch_id
    from current_state
    inner join latest_telemetry on current_state.machine_id = latest_telemetry.machine_id
    inner join open_alarms on current_state.machine_id = open_alarms.machine_id
)

select * from final
