{#- Platform-extension devices: created on first sight by fct_platform_extension (legacy
    numeric ids as sent; serial-only devices under an id derived from the serial). -#}
{{ config(materialized='ensured_table', unique_key=['device_id']) }}

select
    null::bigint as device_id,
    null::text as device_serial,
    null::text as created_from,
    null::timestamptz as first_seen_at,
    null::bigint as first_bronze_id
where false
