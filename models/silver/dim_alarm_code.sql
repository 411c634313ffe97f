{#- Alarm codes: the catalogue (master.alarm_codes, refreshed on every build) plus codes the
    controllers sent that the catalogue lacks, added by fct_alarm_events. -#}
{{ config(
    materialized='ensured_table',
    unique_key=['alarm_code'],
    post_hook="{{ sync_alarm_code_catalogue() }}",
) }}

select
    null::text as alarm_code,
    null::text as alarm_description,
    null::boolean as is_in_catalogue
where false
