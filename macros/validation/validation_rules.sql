{#- The contract's future_time rule: event time more than N minutes (var setu_contract) after
    arrival. -#}
{% macro is_future_time(alias) -%}
    {%- set minutes = var("setu_contract")["future_time_minutes"] | int -%}
    {{ alias }}.time > {{ alias }}.ingested_at + interval '{{ minutes }} minutes'
{%- endmacro %}

{#- The contract's event horizon, setu_contract.max_event_age, as an SQL interval: a whole
    number and a calendar unit, else compilation stops in one line naming the key. The same
    pattern as setu.warehouse.contract.max_event_age. -#}
{% macro max_event_age() -%}
    {%- set value = var("setu_contract").get("max_event_age") -%}
    {%- if value is not string
        or not modules.re.fullmatch(" *[1-9][0-9]* +(year|month|week|day|hour)s? *", value) -%}
        {{ exceptions.raise_compiler_error(
            "dbt_project.yml: vars.setu_contract.max_event_age is " ~ (value | tojson)
            ~ ": give a whole number and a unit (years, months, weeks, days or hours),"
            ~ " e.g. '5 years'") }}
    {%- endif -%}
    interval {{ sql_literal(value | trim) }}
{%- endmacro %}

{#- expression moved by max_event_age (sign '-' or '+') on the UTC calendar, so the horizon
    does not depend on the session's time zone. -#}
{% macro shifted_by_max_event_age(expression, sign) -%}
    (({{ expression }}) at time zone 'UTC' {{ sign }} {{ max_event_age() }}) at time zone 'UTC'
{%- endmacro %}

{#- Any of the alias's timestamp columns further before its ingested_at than max_event_age:
    a gateway whose clock was reset (year 1) sends such times. -#}
{% macro is_before_event_horizon(alias, columns) -%}
    (
        {%- for column in columns %}
        {%- if not loop.first %} or {% endif -%}
        {{ alias }}.{{ column }} < {{ shifted_by_max_event_age(alias ~ ".ingested_at", "-") }}
        {%- endfor -%}
    )
{%- endmacro %}

{#- The contract's quarantine reason of a row of Bronze table table_name, as a CASE: the
    first reason of var setu_contract's `reasons` whose condition holds, null when none.
    missing_value, invalid_code, out_of_range, bad_interval and future_time come from the
    table's contract entry (a rule the table does not have is left out); the caller gives the
    conditions that need its joins (unknown_machine, and duplicate, which may be a list of
    conditions tried in order). Code columns are compared as staging normalises them
    (`<column>_code`). -#}
{% macro quarantine_reason(table_name, alias, unknown_machine=none, duplicate=none) -%}
    {%- set rules = bronze_contract(table_name) -%}
    {%- set conditions = {"unknown_machine": [unknown_machine] if unknown_machine else [],
                          "duplicate": (duplicate if duplicate is not string else [duplicate])
                                       if duplicate else []} -%}
    {%- set missing = [] -%}
    {%- for column in rules["required"] -%}
        {%- do missing.append(alias ~ "." ~ column ~ " is null") -%}
    {%- endfor -%}
    {%- if rules["required_any"] -%}
        {%- set any_columns = [] -%}
        {%- for column in rules["required_any"] -%}
            {%- do any_columns.append(alias ~ "." ~ column) -%}
        {%- endfor -%}
        {%- do missing.append("num_nonnulls(" ~ any_columns | join(", ") ~ ") = 0") -%}
    {%- endif -%}
    {%- do conditions.update({"missing_value": [missing | join(" or ")] if missing else []}) -%}
    {%- set invalid = [] -%}
    {%- for column, code in rules["codes"].items() -%}
        {%- set literals = [] -%}
        {%- for value in code["values"] -%}
            {%- do literals.append(sql_literal(value)) -%}
        {%- endfor -%}
        {%- do invalid.append(alias ~ "." ~ column ~ "_code not in (" ~ literals | join(", ")
            ~ ")") -%}
    {%- endfor -%}
    {%- do conditions.update({"invalid_code": [invalid | join(" or ")] if invalid else []}) -%}
    {%- set outside = [] -%}
    {%- for column, bounds in rules["ranges"].items() -%}
        {%- do outside.append(is_out_of_range(alias ~ "." ~ column, bounds[0], bounds[1])) -%}
    {%- endfor -%}
    {%- if var("setu_contract").get("finite_numbers", false) -%}
        {%- for column, data_type in rules["columns"]
            if data_type.startswith("double precision") -%}
            {%- do outside.append(
                alias ~ "." ~ column ~ " in ('NaN', 'Infinity', '-Infinity')") -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set max_magnitude = var("setu_contract").get("max_magnitude") -%}
    {%- if max_magnitude is not none -%}
        {%- for column, data_type in rules["columns"]
            if data_type.startswith("double precision") -%}
            {%- do outside.append(
                "abs(" ~ alias ~ "." ~ column ~ ") > " ~ (max_magnitude | float)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for column, max_chars in rules["max_chars"].items() -%}
        {%- do outside.append(
            "char_length(" ~ alias ~ "." ~ column ~ ") > " ~ (max_chars | int)) -%}
    {%- endfor -%}
    {%- do outside.append(is_before_event_horizon(
        alias, ["time"] + ([rules["interval_start"]] if rules["interval_start"] else []))) -%}
    {%- do conditions.update({"out_of_range": [outside | join(" or ")] if outside else []}) -%}
    {%- do conditions.update({"bad_interval": [
        alias ~ "." ~ rules["interval_start"] ~ " > " ~ alias ~ ".time"]
        if rules["interval_start"] else []}) -%}
    {%- do conditions.update({"future_time": [is_future_time(alias)]}) -%}
    case
        {%- for reason in var("setu_contract")["reasons"] %}
            {%- for condition in conditions.get(reason, []) %}
        when {{ condition }} then {{ sql_literal(reason) }}
            {%- endfor %}
        {%- endfor %}
    end
{%- endmacro %}

{#- The code column of a Bronze column with a code list, normalised as the contract says
    (trimmed, then upper or lower case): `<column>_code`. -#}
{% macro normalized_code(table_name, column) -%}
    {{ bronze_contract(table_name)["codes"][column]["normalize"] }}(trim({{ column }}))
{%- endmacro %}

{#- True when an earlier Bronze row (lower id) of the same machine or device has the same
    time and values and is itself otherwise valid. Same values and machine mean the same
    verdict on every rule but those that also depend on arrival (future_time and the
    max_event_age horizon of time and interval_start): so the earlier row only has to pass
    those. Keeps the earliest id of a set of duplicates, whatever the
    batch boundaries. Key columns compare with `=` so the probe uses the Bronze
    (key, time desc) index: callers pass keys that are never null for a valid row. -#}
{% macro has_earlier_duplicate(relation, alias, key_columns, value_columns,
                               interval_start=none) -%}
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
            and not {{ is_before_event_horizon(
                "earlier", ["time"] + ([interval_start] if interval_start else [])) }}
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
