{#- New NC programs of a batch (cycles or state events) into dim_program. -#}
{% macro register_new_programs() %}
    insert into {{ ref('dim_program') }} (program_name, first_seen_at)
    select program_name, min({{ config.get('time_column_name') }})
    from pg_temp._etl_batch
    where quarantine_reason is null and program_name is not null
    group by program_name
    on conflict (program_name) do nothing
{% endmacro %}

{#- Alarm codes sent by controllers that the catalogue lacks. -#}
{% macro register_new_alarm_codes() %}
    insert into {{ ref('dim_alarm_code') }} (alarm_code, alarm_description, is_in_catalogue)
    select distinct alarm_code, null::text, false
    from pg_temp._etl_batch
    where quarantine_reason is null
    on conflict (alarm_code) do nothing
{% endmacro %}

{#- The catalogue's codes and descriptions, refreshed on every build. -#}
{% macro sync_alarm_code_catalogue() %}
    insert into {{ this }} (alarm_code, alarm_description, is_in_catalogue)
    select alarm_code, alarm_description, true
    from {{ ref('stg_master__alarm_codes') }}
    on conflict (alarm_code) do update
    set alarm_description = excluded.alarm_description, is_in_catalogue = true
{% endmacro %}

{#- Devices first seen in a batch of platform-extension readings. The serial is the first one
    the device sent (by bronze_id), even when its first reading came without one, so the row
    does not depend on the batch boundaries. -#}
{% macro register_new_devices() %}
    insert into {{ ref('dim_device') }} as devices (
        device_id, device_serial, created_from, first_seen_at, first_bronze_id
    )
    select
        device_id,
        (array_agg(device_serial order by bronze_id)
            filter (where device_serial is not null))[1],
        (array_agg(device_created_from order by bronze_id))[1],
        (array_agg(time order by bronze_id))[1],
        min(bronze_id)
    from pg_temp._etl_batch
    where quarantine_reason is null
    group by device_id
    on conflict (device_id) do update
    set device_serial = coalesce(devices.device_serial, excluded.device_serial)
{% endmacro %}
