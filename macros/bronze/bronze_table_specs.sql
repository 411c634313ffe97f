{#- The contract's Bronze tables: flat, strictly typed, append-only. A column added here is
    added to existing tables with `alter table ... add column`; nothing is ever dropped.
    row_bytes estimates a row plus its index entries, for chunk sizing; rows_per_second is the
    expected ingest rate of a 10,000-machine plant (overridable per table by the var
    setu_ingest_rows_per_second). -#}
{% macro bronze_table_specs() %}
    {{ return({
        "machine_state_events": {
            "entity_column": "machine_id",
            "columns": [
                ("machine_id", "bigint"), ("state", "text"), ("program_name", "text"),
            ],
            "row_bytes": 150, "rows_per_second": 200,
        },
        "machine_cycles": {
            "entity_column": "machine_id",
            "columns": [
                ("machine_id", "bigint"), ("cycle_start", "timestamptz"),
                ("program_name", "text"), ("part_count", "bigint"), ("result", "text"),
                ("std_cycle_seconds", "double precision"),
                ("std_load_unload_seconds", "double precision"),
                ("down_threshold_seconds", "double precision"),
            ],
            "row_bytes": 220, "rows_per_second": 100,
        },
        "machine_telemetry": {
            "entity_column": "machine_id",
            "columns": [
                ("machine_id", "bigint"), ("spindle_speed_rpm", "double precision"),
                ("feed_rate_mm_min", "double precision"),
                ("spindle_load_pct", "double precision"),
                ("spindle_temp_c", "double precision"), ("motor_temp_c", "double precision"),
                ("coolant_temp_c", "double precision"), ("power_kw", "double precision"),
                ("energy_kwh", "double precision"),
            ],
            "row_bytes": 230, "rows_per_second": 1000,
        },
        "alarms": {
            "entity_column": "machine_id",
            "columns": [
                ("machine_id", "bigint"), ("alarm_code", "text"), ("severity", "text"),
                ("message", "text"), ("event", "text"),
            ],
            "row_bytes": 200, "rows_per_second": 10,
        },
        "platform_extension": {
            "entity_column": "device_id",
            "columns": [
                ("device_id", "bigint"), ("device_serial", "text"),
                ("value", "double precision"), ("unit", "text"), ("firmware", "text"),
            ],
            "row_bytes": 190, "rows_per_second": 100,
            "extra_indexes": [["device_serial", "time desc"]],
        },
        "downtime_events": {
            "entity_column": "machine_id",
            "columns": [
                ("machine_id", "bigint"), ("down_start", "timestamptz"),
                ("reason_code", "text"), ("program_name", "text"),
            ],
            "row_bytes": 170, "rows_per_second": 10,
        },
    }) }}
{% endmacro %}

{#- Reference tables the models read; operators insert into them directly. -#}
{% macro master_table_ddl() %}
create schema if not exists master;
create table if not exists master.sites (
    site_id bigint primary key,
    site_code text not null,
    timezone text not null
);
create table if not exists master.shifts (
    site_id bigint not null,
    shift_id int not null,
    shift_name text not null,
    start_local time not null,
    end_local time not null,
    primary key (site_id, shift_id)
);
create table if not exists master.machines (
    machine_id bigint primary key,
    machine_code text not null,
    site_id bigint not null
);
create table if not exists master.device_calibrations (
    device_id bigint primary key,
    ticks_per_mm double precision not null
);
create table if not exists master.alarm_codes (
    alarm_code text primary key,
    description text
);
create table if not exists master.downtime_reasons (
    reason_code text primary key,
    description text,
    planned boolean not null default false
);
{% endmacro %}
