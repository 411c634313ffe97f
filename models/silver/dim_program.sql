{#- NC programs, added by the cycle and state facts as they first appear. -#}
{{ config(materialized='ensured_table', unique_key=['program_name']) }}

select
    null::text as program_name,
    null::timestamptz as first_seen_at
where false
