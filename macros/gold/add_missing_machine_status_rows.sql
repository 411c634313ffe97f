{#- Every machine in master.machines has a status row, also before it sends anything: after
    each batch (the in-database job runs no post-hooks) and as the post-hook of every dbt run.
    Reads master through staging, not the dim_machine table, which only a dbt run rebuilds. -#}
{% macro add_missing_machine_status_rows() %}
    insert into {{ this }} (machine_id, open_alarm_count, refreshed_at)
    select machines.machine_id, 0, now()
    from {{ ref('stg_master__machines') }} as machines
    where not exists (
        select from {{ this }} as status where status.machine_id = machines.machine_id
    )
    on conflict (machine_id) do nothing
{% endmacro %}
