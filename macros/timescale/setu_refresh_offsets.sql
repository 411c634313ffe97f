{#- Validated config refresh_policy of a continuous aggregate: {"start", "end", "schedule"},
    each a setu_interval result or none (a none offset means open-ended, as in TimescaleDB;
    schedule defaults to 1 hour because add_continuous_aggregate_policy requires one). -#}
{% macro setu_refresh_offsets(relation, refresh) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- if refresh is not mapping -%}{{ return(none) }}{%- endif -%}
    {{ return({
        "start": setu_interval(refresh.get("start_offset"), label, "refresh_policy.start_offset",
                               allow_none=true),
        "end": setu_interval(refresh.get("end_offset"), label, "refresh_policy.end_offset",
                             allow_none=true),
        "schedule": setu_interval(refresh.get("schedule_interval", "1 hour"), label,
                                  "refresh_policy.schedule_interval"),
    }) }}
{% endmacro %}
