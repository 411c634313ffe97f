{#- The statements that bring compression on a hypertable or continuous aggregate to what
    config `compression` asks for. Pure: caps and state are given.
    compression: {segmentby, orderby, after, schedule_interval} | true | false | none.
    - dict/true: settings through ALTER ... SET (2.18+: timescaledb.enable_columnstore,
      timescaledb.segmentby, timescaledb.orderby; older: timescaledb.compress,
      timescaledb.compress_segmentby, timescaledb.compress_orderby) when they differ;
      a policy when `after` is set (2.18+: CALL add_columnstore_policy; older:
      add_compression_policy), altered with alter_job when it changed.
    - false: SETU's policy removed, compressed chunks decompressed, then compression off.
    - none: only a policy SETU added earlier is removed; settings are left as they are.
    Community edition only; elsewhere one "skipped" message when something is asked for.
    Returns {"statements": [...], "message": text or none}. -#}
{% macro setu_compression_plan(relation, compression, caps, state) %}
    {%- set label = setu_relation_label(relation) -%}
    {%- set asked = compression is mapping or compression is sameas true -%}
    {%- set unavailable = setu_unavailable_reason(caps) -%}
    {%- if unavailable -%}
        {{ return({"statements": [], "message":
            "compression skipped: " ~ unavailable if asked else none}) }}
    {%- endif -%}
    {%- if state["target"] is none -%}
        {{ return({"statements": [], "message": "compression skipped: not a hypertable"
            ~ " (config time_column_name makes one)" if asked else none}) }}
    {%- endif -%}
    {%- set columnstore = setu_version_at_least(caps["version"], "2.18.0") -%}
    {%- set regclass = setu_regclass(relation) -%}
    {%- set alter_kind = "materialized view" if state["target"] == "cagg" else "table" -%}
    {%- set alter_target = "alter " ~ alter_kind ~ " " ~ relation.include(database=false) -%}
    {%- set statements = [] -%}
    {%- set parts = [] -%}
    {%- if columnstore -%}
        {%- set remove_sql = "call remove_columnstore_policy(hypertable => " ~ regclass
            ~ ", if_exists => true)" -%}
    {%- else -%}
        {%- set remove_sql = "select remove_compression_policy(hypertable => " ~ regclass
            ~ ", if_exists => true)" -%}
    {%- endif -%}

    {%- if asked -%}
        {%- set config = compression if compression is mapping else {} -%}
        {%- set segmentby = setu_column_list(config["segmentby"], label, "compression.segmentby")
            if config.get("segmentby") else none -%}
        {%- set orderby = setu_column_list(config["orderby"], label, "compression.orderby",
            with_order=true) if config.get("orderby") else none -%}
        {%- set settings_differ = not state["enabled"]
            or (segmentby is not none and setu_normalize_column_list(segmentby)
                != setu_normalize_column_list(state["segmentby"]))
            or (orderby is not none and setu_normalize_column_list(orderby)
                != setu_normalize_column_list(state["orderby"])) -%}
        {%- if settings_differ -%}
            {%- set options = [("timescaledb.enable_columnstore" if columnstore
                                else "timescaledb.compress") ~ " = true"] -%}
            {%- if segmentby is not none -%}
                {%- do options.append(("timescaledb.segmentby" if columnstore
                    else "timescaledb.compress_segmentby") ~ " = " ~ sql_literal(segmentby)) -%}
            {%- endif -%}
            {%- if orderby is not none -%}
                {%- do options.append(("timescaledb.orderby" if columnstore
                    else "timescaledb.compress_orderby") ~ " = " ~ sql_literal(orderby)) -%}
            {%- endif -%}
            {%- do statements.append(alter_target ~ " set (" ~ options | join(", ") ~ ")") -%}
            {%- do parts.append("compression " ~ ("enabled" if not state["enabled"] else "settings updated")
                ~ " (" ~ ("columnstore" if columnstore else "compress")
                ~ (", segmentby " ~ segmentby if segmentby else "")
                ~ (", orderby " ~ orderby if orderby else "") ~ ")") -%}
        {%- endif -%}
        {%- set after = setu_interval(config.get("after"), label, "compression.after",
                                      allow_none=true) -%}
        {%- set schedule = setu_interval(config.get("schedule_interval"), label,
                                         "compression.schedule_interval", allow_none=true) -%}
        {%- set schedule_sql = schedule["sql"] if schedule is not none else none -%}
        {%- if after is not none -%}
            {%- if columnstore -%}
                {%- set add_sql = "call add_columnstore_policy(hypertable => " ~ regclass
                    ~ ", after => " ~ after["sql"] ~ ", if_not_exists => true"
                    ~ (", schedule_interval => " ~ schedule_sql if schedule_sql else "") ~ ")" -%}
            {%- else -%}
                {%- set add_sql = "select add_compression_policy(hypertable => " ~ regclass
                    ~ ", compress_after => " ~ after["sql"] ~ ", if_not_exists => true"
                    ~ (", schedule_interval => " ~ schedule_sql if schedule_sql else "") ~ ")" -%}
            {%- endif -%}
            {%- set add = [add_sql, setu_tag_job_sql(relation, "policy_compression")] -%}
            {%- set alter = [setu_alter_job_sql(state["job"]["job_id"] if state["job"] else 0,
                schedule_sql, {"compress_after": after["sql"]})] -%}
        {%- else -%}
            {%- set add, alter = [], [] -%}
        {%- endif -%}
        {%- set policy = setu_policy_plan("compression policy", after is not none, state["job"],
            add, alter, remove_sql, "after " ~ after["text"] if after is not none else "") -%}
        {%- do statements.extend(policy["statements"]) -%}
        {%- do parts.append(policy["message"]) if policy["message"] -%}
    {%- else -%}
        {%- set policy = setu_policy_plan("compression policy", false, state["job"], [], [],
                                          remove_sql) -%}
        {%- do parts.append(policy["message"]) if policy["message"] -%}
        {%- set manual = state["job"] is not none and not state["job"]["managed"] -%}
        {%- do statements.extend(policy["statements"]) -%}
        {%- if compression is sameas false and state["enabled"] and not manual -%}
            {%- if state["compressed_chunks"] > 0 and columnstore -%}
                {%- do statements.append("do $setu$ declare chunk_rel regclass; begin"
                    ~ " for chunk_rel in select c from show_chunks(relation => " ~ regclass
                    ~ ") as c loop call convert_to_rowstore(chunk => chunk_rel,"
                    ~ " if_columnstore => true); end loop; end $setu$") -%}
            {%- elif state["compressed_chunks"] > 0 -%}
                {%- do statements.append("select decompress_chunk(uncompressed_chunk => c,"
                    ~ " if_compressed => true) from show_chunks(relation => " ~ regclass
                    ~ ") as c") -%}
            {%- endif -%}
            {%- do statements.append(alter_target ~ " set ("
                ~ ("timescaledb.enable_columnstore" if columnstore else "timescaledb.compress")
                ~ " = false)") -%}
            {%- do parts.append("compression turned off (" ~ state["compressed_chunks"]
                ~ " compressed chunks decompressed first)") -%}
        {%- endif -%}
    {%- endif -%}
    {{ return({"statements": statements,
               "message": parts | join("; ") if parts else none}) }}
{% endmacro %}
