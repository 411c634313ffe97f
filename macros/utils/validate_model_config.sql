{#- Model config keys dbt itself knows (dbt-core 1.10-1.11 ModelConfig, and dbt-postgres's
    indexes and unlogged); tests/python/test_bad_config.py checks the list against the
    installed dbt, so an upgrade that adds a key fails a test rather than a user's build. -#}
{% macro dbt_model_config_keys() %}
    {{ return([
        "access", "alias", "batch_size", "begin", "column_types", "concurrent_batches",
        "contract", "database", "docs", "enabled", "event_time", "freshness", "full_refresh",
        "grants", "group", "incremental_strategy", "lookback", "materialized", "meta",
        "on_configuration_change", "on_schema_change", "packages", "persist_docs",
        "post-hook", "pre-hook", "quoting", "schema", "static_analysis", "tags", "unique_key",
        "sql_header", "indexes", "unlogged",
    ]) }}
{% endmacro %}

{#- Keys SETU's own materializations read (watermark_incremental, ensured_table; the
    continuous_aggregate keys are lifecycle keys, setu_timescale_config_keys). The batch size
    is watermark_batch_size: dbt's own batch_size belongs to its microbatch strategy. -#}
{% macro setu_materialization_config_keys() %}
    {{ return([
        "watermark_sources", "unique_key", "null_safe_keys", "quarantine_source_table",
        "after_batch", "on_reset", "time_column_name", "watermark_batch_size",
        "max_batches_per_run",
    ]) }}
{% endmacro %}

{#- Checks the current model's config before its materialization runs any statement, so a
    typo or a hostile value is ONE compiler error naming the model and the key, and nothing is
    created or dropped: every key the model sets (in its config() or dbt_project.yml) must be
    known; identifiers (columns, watermark sources) must be plain lowercase names, and the
    sources must exist; macro names must exist; counts positive; chunk_time_interval an
    interval (setu_interval). Called first thing by SETU's materializations and by the
    lifecycle post-hook (which every model runs). Returns "". -#}
{% macro validate_model_config() %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set label = this.schema ~ "." ~ this.identifier -%}
    {%- set where = "setu: " ~ label ~ " (" ~ model.original_file_path ~ "): config " -%}
    {%- set known = dbt_model_config_keys() + setu_materialization_config_keys()
        + setu_timescale_config_keys() -%}
    {%- for key in model.unrendered_config if key not in known -%}
        {{ exceptions.raise_compiler_error(where ~ "key " ~ setu_quoted(key) ~ " is unknown"
            ~ setu_closest_key(key, known) ~ "; SETU's keys are listed in "
            ~ "docs/timescaledb-config.md and macros/etl/materializations/") }}
    {%- endfor -%}

    {%- set identifier_re = "^[a-z_][a-z0-9_$]*$" -%}
    {%- set columns = [] -%}
    {%- for key in ["unique_key", "null_safe_keys", "time_column_name"] -%}
        {%- set value = config.get(key) -%}
        {%- for name in ([value] if value is string else (value or [])) -%}
            {%- if not (name is string and modules.re.match(identifier_re, name)) -%}
                {{ exceptions.raise_compiler_error(where ~ key ~ " = " ~ setu_quoted(name)
                    ~ " is not a column name; write a plain lowercase name such as bronze_id") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}

    {%- if model.config.materialized == "watermark_incremental" -%}
        {%- for spec in watermark_source_specs(config.get("watermark_sources") or []) -%}
            {%- set well_formed = spec.relation is string and modules.re.match(
                "^[a-z_][a-z0-9_$]*[.][a-z_][a-z0-9_$]*$", spec.relation) -%}
            {%- set parts = (spec.relation | string).split(".") -%}
            {%- set found = adapter.get_relation(database=target.database, schema=parts[0],
                identifier=parts[1]) if well_formed else none -%}
            {%- if found is none -%}
                {{ exceptions.raise_compiler_error(where ~ "watermark_sources entry "
                    ~ setu_quoted(spec.relation) ~ (" does not exist yet: build or create it first"
                    if well_formed else " is not a table name; write schema.table, e.g. bronze.alarms")) }}
            {%- endif -%}
            {%- if not (spec.id_column is string and modules.re.match(identifier_re, spec.id_column)) -%}
                {{ exceptions.raise_compiler_error(where ~ "watermark_sources id_column "
                    ~ setu_quoted(spec.id_column) ~ " is not a column name; write e.g. id") }}
            {%- endif -%}
        {%- endfor -%}
        {%- set quarantine = config.get("quarantine_source_table") -%}
        {%- if quarantine is not none and quarantine not in bronze_table_specs() -%}
            {{ exceptions.raise_compiler_error(where ~ "quarantine_source_table = "
                ~ setu_quoted(quarantine) ~ " is not a Bronze table; one of "
                ~ bronze_table_specs().keys() | join(", ")) }}
        {%- endif -%}
        {%- for key in ["after_batch", "on_reset"] -%}
            {%- for name in config.get(key) or [] -%}
                {%- if not (name is string and modules.re.match(identifier_re, name)
                    and context.get(name) is not none) -%}
                    {{ exceptions.raise_compiler_error(where ~ key ~ " entry " ~ setu_quoted(name)
                        ~ " is not a macro of this project; list macro names") }}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- for key in ["watermark_batch_size", "max_batches_per_run"] -%}
            {%- set value = config.get(key) -%}
            {%- if value is not none and not (modules.re.match("^[0-9]+$", value | string)
                and value | int > 0) -%}
                {{ exceptions.raise_compiler_error(where ~ key ~ " = " ~ setu_quoted(value)
                    ~ " is not a positive whole number") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- do setu_interval(config.get("chunk_time_interval"), label, "chunk_time_interval",
                         allow_none=true) -%}
    {{ return("") }}
{% endmacro %}

{#- " (did you mean "x"?)" for the known key sharing the longest prefix (at least 4
    characters) with an unknown one, else "". -#}
{% macro setu_closest_key(key, known) %}
    {%- set best = namespace(key=none, length=3) -%}
    {%- for candidate in known -%}
        {%- set shared = namespace(length=0, open=true) -%}
        {%- for index in range([key | length, candidate | length] | min) if shared.open -%}
            {%- if key[index] == candidate[index] -%}
                {%- set shared.length = shared.length + 1 -%}
            {%- else -%}
                {%- set shared.open = false -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if shared.length > best.length -%}
            {%- set best.key = candidate -%}
            {%- set best.length = shared.length -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(" (did you mean " ~ setu_quoted(best.key) ~ "?)" if best.key else "") }}
{% endmacro %}
