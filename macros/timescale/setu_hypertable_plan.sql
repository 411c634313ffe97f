{#- The statements that make a relation the hypertable its config asks for, from the state
    setu_hypertable_state() read. Pure (no queries), so it can be rendered for any server.
    Returns {"steps": [{"sql", "action", "conditional"}], "notes": [...]}: a conditional
    step is a select that returns a row only when it changed something (the interval or
    partition count differed), so re-running it is a no-op and the caller can tell. -#}
{% macro setu_hypertable_plan(relation, settings, state) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set regclass = setu_regclass(relation) -%}
    {%- set time_column = settings["time_column_name"] -%}
    {%- set steps = [] -%}
    {%- set notes = [] -%}
    {%- set integer_time = (state["time_column_type"] or "") in ["smallint", "integer", "bigint"] -%}
    {%- set interval = setu_interval(settings.get("chunk_time_interval"), label,
                                     "chunk_time_interval", allow_none=true) -%}
    {%- if interval is not none and (interval["kind"] == "bigint") != integer_time -%}
        {{ exceptions.raise_compiler_error(
            "setu: " ~ label ~ ": config chunk_time_interval = " ~ (interval["text"] | tojson)
            ~ " does not suit time column " ~ time_column ~ " of type "
            ~ (state["time_column_type"] or "unknown")
            ~ (": an integer time column needs a whole number" if integer_time
               else ": a time column needs an interval such as '1 day'")) }}
    {%- endif -%}
    {%- set existing = {} -%}
    {%- for dim in state["dimensions"] -%}
        {%- do existing.update({dim["column_name"]: dim}) -%}
    {%- endfor -%}

    {%- if not state["is_hypertable"] -%}
        {%- set by_range_args = "column_name => " ~ sql_literal(time_column)
            ~ (", partition_interval => " ~ interval["sql"] if interval is not none else "") -%}
        {%- set default_indexes = settings.get("create_default_indexes") -%}
        {%- do steps.append({"conditional": false,
            "action": "created on " ~ time_column
                ~ (" (chunk interval " ~ interval["text"] ~ ")" if interval is not none else "")
                ~ (", existing rows migrated to chunks" if state["has_rows"] else ""),
            "sql": "select * from create_hypertable("
                ~ "relation => " ~ regclass
                ~ ", dimension => by_range(" ~ by_range_args ~ ")"
                ~ (", create_default_indexes => " ~ (default_indexes | string | lower)
                   if default_indexes is not none else "")
                ~ ", if_not_exists => true"
                ~ ", migrate_data => " ~ (state["has_rows"] | string | lower) ~ ")"}) -%}
    {%- else -%}
        {%- set primary = state["dimensions"][0] if state["dimensions"] else none -%}
        {%- if primary is not none and primary["column_name"] != time_column -%}
            {%- do notes.append("time column is " ~ primary["column_name"]
                ~ " on the server but " ~ time_column ~ " in config: a hypertable's time"
                ~ " column cannot change, rebuild with --full-refresh") -%}
        {%- elif interval is not none -%}
            {%- set server_column = "integer_interval" if integer_time else "time_interval" -%}
            {%- do steps.append({"conditional": true,
                "action": "chunk interval changed to " ~ interval["text"] ~ " (new chunks only)",
                "sql": "select set_chunk_time_interval(hypertable => " ~ regclass
                    ~ ", chunk_time_interval => " ~ interval["sql"]
                    ~ ", dimension_name => " ~ sql_literal(time_column) ~ ") "
                    ~ setu_dimension_where(relation, time_column)
                    ~ " and " ~ server_column ~ " is distinct from " ~ interval["sql"]}) -%}
        {%- endif -%}
    {%- endif -%}

    {%- set configured = [time_column] -%}
    {%- for dim in settings.get("dimensions") or [] -%}
        {%- set column = dim.get("column_name") if dim is mapping else none -%}
        {%- if not column -%}
            {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config dimensions["
                ~ loop.index0 ~ "] needs a column_name") }}
        {%- endif -%}
        {%- do configured.append(column) -%}
        {%- set range_value = dim.get("chunk_time_interval", dim.get("partition_interval")) -%}
        {%- set where = setu_dimension_where(relation, column) -%}
        {%- if dim.get("number_partitions") is not none -%}
            {%- set partitions = dim["number_partitions"] -%}
            {%- if not (partitions is number and partitions | int == partitions and partitions > 0) -%}
                {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config dimensions["
                    ~ loop.index0 ~ "].number_partitions must be a positive whole number") }}
            {%- endif -%}
            {%- if column not in existing -%}
                {%- do steps.append({"conditional": false,
                    "action": "hash dimension " ~ column ~ " added (" ~ partitions
                        ~ " partitions, new chunks only)",
                    "sql": "select * from add_dimension(hypertable => " ~ regclass
                        ~ ", dimension => by_hash(column_name => " ~ sql_literal(column)
                        ~ ", number_partitions => " ~ partitions ~ "), if_not_exists => true)"}) -%}
            {%- else -%}
                {%- do steps.append({"conditional": true,
                    "action": "hash dimension " ~ column ~ " set to " ~ partitions ~ " partitions",
                    "sql": "select set_number_partitions(hypertable => " ~ regclass
                        ~ ", number_partitions => " ~ partitions
                        ~ ", dimension_name => " ~ sql_literal(column) ~ ") " ~ where
                        ~ " and num_partitions is distinct from " ~ partitions}) -%}
            {%- endif -%}
        {%- elif range_value is not none -%}
            {%- set dim_interval = setu_interval(range_value, label,
                "dimensions[" ~ loop.index0 ~ "].chunk_time_interval") -%}
            {%- if column not in existing -%}
                {%- do steps.append({"conditional": false,
                    "action": "range dimension " ~ column ~ " added (interval "
                        ~ dim_interval["text"] ~ ", new chunks only)",
                    "sql": "select * from add_dimension(hypertable => " ~ regclass
                        ~ ", dimension => by_range(column_name => " ~ sql_literal(column)
                        ~ ", partition_interval => " ~ dim_interval["sql"]
                        ~ "), if_not_exists => true)"}) -%}
            {%- else -%}
                {%- set server_column = "integer_interval" if dim_interval["kind"] == "bigint"
                                        else "time_interval" -%}
                {%- do steps.append({"conditional": true,
                    "action": "range dimension " ~ column ~ " interval changed to "
                        ~ dim_interval["text"],
                    "sql": "select set_chunk_time_interval(hypertable => " ~ regclass
                        ~ ", chunk_time_interval => " ~ dim_interval["sql"]
                        ~ ", dimension_name => " ~ sql_literal(column) ~ ") " ~ where
                        ~ " and " ~ server_column ~ " is distinct from " ~ dim_interval["sql"]}) -%}
            {%- endif -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("setu: " ~ label ~ ": config dimensions["
                ~ loop.index0 ~ "] (" ~ column ~ ") needs number_partitions (hash) or"
                ~ " chunk_time_interval (range)") }}
        {%- endif -%}
    {%- endfor -%}
    {%- for column in existing if column not in configured -%}
        {%- do notes.append("dimension " ~ column ~ " kept (TimescaleDB cannot remove a dimension)") -%}
    {%- endfor -%}

    {%- set now_func = settings.get("integer_now_func") -%}
    {%- if now_func -%}
        {%- set parts = now_func.split(".") -%}
        {%- set func_schema = parts[0] if parts | length > 1 else relation.schema -%}
        {%- set func_name = parts[-1] -%}
        {%- set func = adapter.quote(func_schema) ~ "." ~ adapter.quote(func_name) -%}
        {%- if settings.get("integer_now_func_sql") -%}
            {%- do steps.append({"conditional": false, "action": none,
                "sql": "create or replace function " ~ func ~ "() returns "
                    ~ (state["time_column_type"] or "bigint")
                    ~ " language sql stable as $setu$ " ~ settings["integer_now_func_sql"]
                    ~ " $setu$"}) -%}
        {%- endif -%}
        {%- do steps.append({"conditional": true,
            "action": "integer_now_func set to " ~ func_schema ~ "." ~ func_name,
            "sql": "select set_integer_now_func(hypertable => " ~ regclass
                ~ ", integer_now_func => " ~ sql_literal(func) ~ "::regproc"
                ~ ", replace_if_exists => true) " ~ setu_dimension_where(relation, time_column)
                ~ " and integer_now_func is distinct from " ~ sql_literal(func_name)}) -%}
    {%- endif -%}
    {{ return({"steps": steps, "notes": notes}) }}
{% endmacro %}
