{#- No continuous aggregates on this server (Apache edition or plain PostgreSQL): builds the
    same relation as an incremental table and returns the parts of its log line.
    - first build, --full-refresh or changed SQL (`rebuild` says why): create table as the
      model SQL; a hypertable on time_column_name where TimescaleDB is present;
    - later runs: the buckets at or after the cutoff are deleted and aggregated again from
      the model SQL, in the model's transaction. The cutoff is now() - refresh_policy
      .start_offset (for an integer bucket: the newest bucket - start_offset), so late rows
      within start_offset are counted like a refresh policy would; without start_offset or
      time_column_name every bucket is recomputed. Unlike a continuous aggregate the table
      also holds the newest buckets (end_offset is not applied), like materialized_only=false.
    Runs the statement dbt calls 'main'. -#}
{% macro setu_build_aggregate_table(relation, existing, sql, settings, caps, is_cagg, rebuild) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set parts = ["continuous aggregate built as an incremental table: "
        ~ setu_unavailable_reason(caps)] -%}
    {%- set bucket = settings.get("time_column_name") -%}
    {%- set offsets = setu_refresh_offsets(relation, settings.get("refresh_policy")) -%}
    {%- set start = offsets["start"] if offsets else none -%}
    {%- set target = relation.include(database=false) -%}
    {%- if rebuild or existing is none or existing.type != "table" -%}
        {%- do setu_drop_relation(relation, existing, is_cagg) -%}
        {%- call statement("main") -%}
            {{ get_create_table_as_sql(false, relation, sql) }}
        {%- endcall -%}
        {%- do parts.append((rebuild or "built") ~ " from all data") -%}
        {%- if caps["timescaledb"] and bucket -%}
            {%- do parts.append(setu_apply_hypertable(relation, settings, caps)) -%}
        {%- endif -%}
    {%- else -%}
        {%- if bucket and start -%}
            {%- set bucket_sql = adapter.quote(bucket) -%}
            {%- if start["kind"] == "interval" -%}
                {%- set cutoff_query = "select (now() - " ~ start["sql"] ~ ")::text as cutoff" -%}
                {%- set cast = "timestamptz" -%}
            {%- else -%}
                {%- set cutoff_query = "select (coalesce(max(" ~ bucket_sql ~ "), 0) - "
                    ~ start["sql"] ~ ")::text as cutoff from " ~ target -%}
                {%- set cast = "bigint" -%}
            {%- endif -%}
            {%- set cutoff_text = run_query(cutoff_query).rows[0]["cutoff"] -%}
            {%- set cutoff = sql_literal(cutoff_text) ~ "::" ~ cast -%}
            {%- set window = " where " ~ bucket_sql ~ " >= " ~ cutoff -%}
            {%- set recomputed = "buckets since " ~ cutoff_text ~ " (start_offset "
                ~ start["text"] ~ ") recomputed" -%}
        {%- else -%}
            {%- set window = "" -%}
            {%- set recomputed = "all buckets recomputed (no "
                ~ ("refresh_policy.start_offset" if bucket else "time_column_name") ~ ")" -%}
        {%- endif -%}
        {%- set columns = [] -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do columns.append(adapter.quote(column.name)) -%}
        {%- endfor -%}
        {%- do run_query("delete from " ~ target ~ window) -%}
        {%- call statement("main") -%}
            insert into {{ target }} ({{ columns | join(", ") }})
            select {{ columns | join(", ") }}
            from (
                {{ sql }}
            ) as setu_aggregate
            {{ window }}
        {%- endcall -%}
        {%- do parts.append(recomputed) -%}
        {%- if caps["timescaledb"] and bucket -%}
            {%- do setu_apply_hypertable(relation, settings, caps) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do parts.append(setu_reconcile_indexes(relation, settings.get("indexes"))) -%}
    {{ return(parts | select | list) }}
{% endmacro %}
