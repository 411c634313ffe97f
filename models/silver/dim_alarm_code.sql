{#- Alarm codes: the catalogue (master.alarm_codes, refreshed on every build by the post-hook)
    plus the codes accepted alarm events sent that the catalogue lacks. -#}
{{ config(
    materialized='watermark_incremental',
    watermark_sources=[
        {'relation': 'silver.fct_alarm_events', 'id_column': 'etl_batch_id'},
    ],
    unique_key=['alarm_code'],
    post_hook="{{ sync_alarm_code_catalogue() }}",
) }}

with

changed_codes as (
    select distinct alarm_code
    from {{ ref('fct_alarm_events') }}
    where {{ watermark_range('silver.fct_alarm_events', 'etl_batch_id') }}
),

catalogue as (
    select
        alarm_code,
        alarm_description
    from {{ ref('stg_master__alarm_codes') }}
),

final as (
    select
        changed_codes.alarm_code,
        catalogue.alarm_description,
        catalogue.alarm_code is not null as is_in_catalogue
    from changed_codes
    left join catalogue on changed_codes.alarm_code = catalogue.alarm_code
)

select * from final
