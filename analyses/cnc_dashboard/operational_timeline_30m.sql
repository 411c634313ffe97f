{#- Dashboard panel "Operational timeline": the site-local day of a machine in 30-minute
    slots from local midnight, with the seconds spent in each state and the slot's dominant
    state (the most seconds, all its stretches in the slot together). An interval still
    open counts up to now; slots after now have no state. Vars: dashboard_day (default the
    latest day in Gold), dashboard_machine_id (default every machine). -#}
{{ config(enabled=target.type == 'postgres') }}

with

state_intervals as (
    select * from {{ ref('fct_state_intervals') }}
),

utilization as (
    select * from {{ ref('machine_utilization_daily') }}
),

machines as (
    select * from {{ ref('dim_machine') }}
),

parameters as (
    select
        {{ dashboard_parameters('utilization') }}
),

-- Local midnight to local midnight: 46, 48 or 50 slots on daylight-saving days.
slots as (
    select
        machines.machine_id,
        machines.machine_code,
        parameters.local_date,
        slot.slot_start,
        slot.slot_start + interval '30 minutes' as slot_end,
        slot.slot_start at time zone coalesce(machines.timezone, 'UTC') as slot_start_local
    from machines
    cross join parameters
    cross join
        lateral generate_series(
            {{ local_day_start('parameters.local_date', "coalesce(machines.timezone, 'UTC')") }},
            {{ local_day_end('parameters.local_date', "coalesce(machines.timezone, 'UTC')") }}
            - interval '30 minutes',
            interval '30 minutes'
        ) as slot (slot_start)
    where parameters.machine_id is null or machines.machine_id = parameters.machine_id
),

slot_pieces as (
    select
        slots.machine_id,
        slots.slot_start,
        state_intervals.state,
        greatest(state_intervals.valid_from, slots.slot_start) as piece_start,
        least(coalesce(state_intervals.valid_to, now()), slots.slot_end) as piece_end
    from slots
    inner join state_intervals
        on
            slots.machine_id = state_intervals.machine_id
            and slots.slot_end > state_intervals.valid_from
            and slots.slot_start < coalesce(state_intervals.valid_to, now())
),

slot_states as (
    select
        machine_id,
        slot_start,
        state,
        extract(epoch from piece_end - piece_start) as state_seconds
    from slot_pieces
),

-- A state the machine entered twice in a slot counts with both stretches.
state_totals as (
    select
        machine_id,
        slot_start,
        state,
        sum(state_seconds) as state_seconds
    from slot_states
    where state_seconds > 0
    group by machine_id, slot_start, state
),

per_slot as (
    select
        machine_id,
        slot_start,
        {%- for state in ['running', 'idle', 'setup', 'alarm', 'maintenance', 'off'] %}
            coalesce(sum(state_seconds) filter (where state = '{{ state | upper }}'), 0)
                as {{ state }}_seconds,
        {%- endfor %}
        (array_agg(state order by state_seconds desc, state asc))[1] as dominant_state
    from state_totals
    group by machine_id, slot_start
),

final as (
    select
        slots.machine_id,
        slots.machine_code,
        slots.local_date,
        slots.slot_start,
        slots.slot_end,
        slots.slot_start_local,
        per_slot.dominant_state,
        {%- for state in ['running', 'idle', 'setup', 'alarm', 'maintenance', 'off'] %}
            coalesce(per_slot.{{ state }}_seconds, 0) as {{ state }}_seconds,
        {%- endfor %}
        1800 - (
            {%- for state in ['running', 'idle', 'setup', 'alarm', 'maintenance', 'off'] %}
                coalesce(per_slot.{{ state }}_seconds, 0){{ " +" if not loop.last }}
            {%- endfor %}
        ) as unknown_seconds
    from slots
    left join per_slot
        on
            slots.machine_id = per_slot.machine_id
            and slots.slot_start = per_slot.slot_start
)

select * from final
order by machine_id, slot_start
