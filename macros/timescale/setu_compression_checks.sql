{#- The schedule and config checks that tell whether SETU's compression policy job is
    out of date: {"schedule_sql", "checks"} for setu_policy_job_state. -#}
{% macro setu_compression_checks(relation, compression) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set config = compression if compression is mapping else {} -%}
    {%- set after = setu_interval(config.get("after"), label, "compression.after", allow_none=true) -%}
    {%- set schedule = setu_interval(config.get("schedule_interval"), label,
                                     "compression.schedule_interval", allow_none=true) -%}
    {{ return({
        "schedule_sql": schedule["sql"] if schedule is not none else none,
        "checks": [{"key": "compress_after", "sql": after["sql"], "kind": after["kind"]}]
            if after is not none else [],
    }) }}
{% endmacro %}
