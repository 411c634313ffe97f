{#- silver.fn_get_shift_id(site_id, ts): the shift of an instant at a site (contract). The
    instant is turned into the site's wall-clock time with its IANA zone, so daylight-saving
    days are right; a shift whose end is not after its start crosses midnight (end = start is
    a 24-hour shift). Overlapping definitions resolve to the lowest shift_id; null when no
    shift covers the instant or the site is unknown. -#}
{% macro create_shift_function() %}
    create schema if not exists silver;
    create or replace function silver.fn_get_shift_id(p_site_id bigint, p_ts timestamptz)
    returns int
    language sql
    stable
    parallel safe
    as $fn$
        select shifts.shift_id
        from master.sites as sites
        inner join master.shifts as shifts on sites.site_id = shifts.site_id
        cross join lateral (
            select (p_ts at time zone sites.timezone)::time as local_time
        ) as wall_clock
        where
            sites.site_id = p_site_id
            and case
                when shifts.start_local < shifts.end_local
                    then wall_clock.local_time >= shifts.start_local
                    and wall_clock.local_time < shifts.end_local
                else wall_clock.local_time >= shifts.start_local
                    or wall_clock.local_time < shifts.end_local
            end
        order by shifts.shift_id
        limit 1
    $fn$;
{% endmacro %}
