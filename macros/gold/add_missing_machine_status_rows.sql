{#- Every machine in master.machines has a status row, also before it sends anything. -#}
{% macro add_missing_machine_status_rows() %}
    insert into {{ this }} (machine_id, open_alarm_count, refreshed_at)
    select machines.machine_id, 0, now()
    from {{ ref('dim_machine') }} as machines
    where not exists (
        select from {{ this }} as status where status.machine_id = machines.machine_id
    )
{% endmacro %}
