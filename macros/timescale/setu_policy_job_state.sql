{#- The policy job of kind proc_name (policy_compression, policy_retention, policy_reorder,
    policy_refresh_continuous_aggregate) on a relation, as {"job_id", "managed", "differs"},
    or none. managed: the job carries SETU's tag (config key setu_managed = true, set when
    SETU added it). differs: its schedule_interval or one of the checked config keys is not
    what the model asks for; checks are {"key", "sql", "kind"} with kind interval | bigint |
    text and sql none for "should be null". Compared in SQL, so '7 days' = '168 hours'. -#}
{% macro setu_policy_job_state(relation, proc_name, schedule_sql=none, checks=[]) %}
    {%- set differs = ["false"] -%}
    {%- if schedule_sql is not none -%}
        {%- do differs.append("j.schedule_interval is distinct from " ~ schedule_sql) -%}
    {%- endif -%}
    {%- for check in checks -%}
        {%- set stored = "(j.config ->> " ~ sql_literal(check["key"]) ~ ")" -%}
        {%- if check["sql"] is none -%}
            {%- do differs.append(stored ~ " is not null") -%}
        {%- elif check["kind"] == "text" -%}
            {%- do differs.append(stored ~ " is distinct from " ~ check["sql"]) -%}
        {%- else -%}
            {%- do differs.append(stored ~ "::" ~ check["kind"] ~ " is distinct from " ~ check["sql"]) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set query -%}
        select
            j.job_id,
            coalesce(j.config ->> 'setu_managed', 'false') = 'true' as managed,
            ({{ differs | join(" or ") }}) as differs
        from timescaledb_information.jobs as j
        where j.proc_name = {{ sql_literal(proc_name) }}
            and {{ setu_job_relation_where(relation) }}
        order by managed desc, j.job_id
        limit 1
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}{{ return(none) }}{%- endif -%}
    {{ return({"job_id": rows[0]["job_id"], "managed": rows[0]["managed"],
               "differs": rows[0]["differs"]}) }}
{% endmacro %}
