{#- The catalogue's codes and descriptions, refreshed on every build. -#}
{% macro sync_alarm_code_catalogue() %}
    insert into {{ this }} (alarm_code, alarm_description, is_in_catalogue)
    select alarm_code, alarm_description, true
    from {{ ref('stg_master__alarm_codes') }}
    on conflict (alarm_code) do update
    set alarm_description = excluded.alarm_description, is_in_catalogue = true
{% endmacro %}
