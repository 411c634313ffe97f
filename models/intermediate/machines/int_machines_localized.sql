{#- Every machine with the IANA time zone its local days and shifts use: its site's, or UTC
    when the machine's site is unknown (so no machine falls out of the daily Gold models). -#}
with

machines as (
    select * from {{ ref('dim_machine') }}
),

final as (
    select
        machine_id,
        coalesce(timezone, 'UTC') as timezone
    from machines
)

select * from final
