{#- The cycle state cache: the last accepted cycle of every machine, read by primary key so a
    batch stitches onto history without scanning the cycle facts. Rows for machines new in
    master.machines are added on every build (post-hook); fct_machine_cycles updates the
    rows of the machines in each batch in the batch's own transaction. -#}
{{ config(
    materialized='ensured_table',
    unique_key=['machine_id'],
    post_hook="{{ add_missing_cycle_state_rows() }}",
) }}

select
    null::bigint as machine_id,
    null::timestamptz as last_cycle_end,
    null::bigint as last_part_count,
    null::bigint as last_bronze_id,
    null::timestamptz as last_cycle_start,
    null::timestamptz as updated_at
where false
