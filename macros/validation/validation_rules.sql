{#- The contract's future_time rule: event time more than 5 minutes after arrival. -#}
{% macro is_future_time(alias) -%}
    {{ alias }}.time > {{ alias }}.ingested_at + interval '5 minutes'
{%- endmacro %}

{#- True when an earlier Bronze row (lower id) of the same machine or device has the same
    time and values and is itself otherwise valid. Same values and machine mean the same
    verdict on every rule but future_time, which also depends on arrival: so the earlier row
    only has to pass that one. Keeps the earliest id of a set of duplicates, whatever the
    batch boundaries. Key columns compare with `=` so the probe uses the Bronze
    (key, time desc) index: callers pass keys that are never null for a valid row. -#}
{% macro has_earlier_duplicate(relation, alias, key_columns, value_columns) -%}
    exists (
        select 1
        from {{ relation }} as earlier
        where
            {% for column in key_columns -%}
            earlier.{{ column }} = {{ alias }}.{{ column }}
            and {% endfor -%}
            earlier.time = {{ alias }}.time
            and earlier.bronze_id < {{ alias }}.bronze_id
            and not ({{ is_future_time("earlier") }})
            {%- for column in value_columns %}
            and earlier.{{ column }} is not distinct from {{ alias }}.{{ column }}
            {%- endfor %}
    )
{%- endmacro %}

{#- A non-null value outside [low, high] (either bound may be none). -#}
{% macro is_out_of_range(column, low=none, high=none) -%}
    (
        {%- if low is not none %}{{ column }} < {{ low }}{% endif -%}
        {%- if low is not none and high is not none %} or {% endif -%}
        {%- if high is not none %}{{ column }} > {{ high }}{% endif -%}
    )
{%- endmacro %}
