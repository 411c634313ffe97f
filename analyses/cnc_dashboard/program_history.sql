{#- Dashboard panel "Program history": cycles, good and scrap parts, scrap rate and mean cycle
    time per machine and NC program, for the seven site-local days up to the dashboard day.
    Vars: dashboard_day (default the latest day in Gold), dashboard_machine_id (default every
    machine), history_days (default 7). -#}
{{ config(enabled=target.type == 'postgres') }}

with

program_history as (
    select * from {{ ref('program_history_daily') }}
),

machines as (
    select * from {{ ref('dim_machine') }}
),

parameters as (
    select
        {{ dashboard_parameters('program_history', with_history_days=true) }}
),

final as (
    select
        program_history.machine_id,
        machines.machine_code,
        program_history.local_date,
        coalesce(program_history.program_name, '(none)') as program_name,
        program_history.cycles,
        program_history.good_parts,
        program_history.scrap_parts,
        round(100.0 * program_history.scrap_parts / program_history.cycles, 1)
            as scrap_rate_pct,
        round((program_history.cycle_seconds / program_history.cycles)::numeric, 1)
            as mean_cycle_seconds
    from program_history
    inner join parameters
        on
            program_history.local_date
            between parameters.local_date - (parameters.history_days - 1)
            and parameters.local_date
            and (
                parameters.machine_id is null
                or program_history.machine_id = parameters.machine_id
            )
    left join machines on program_history.machine_id = machines.machine_id
)

select * from final
order by machine_id, local_date, program_name
