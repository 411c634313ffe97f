{#- alter_job for a SETU policy job whose settings changed: keeps the job id and its stats,
    merges the changed config keys ({"key": sql}) into the job's config. -#}
{% macro setu_alter_job_sql(job_id, schedule_sql=none, config_sql={}) %}
    {%- set pairs = ["'setu_managed', true"] -%}
    {%- for key, value_sql in config_sql.items() -%}
        {%- do pairs.append(sql_literal(key) ~ ", " ~ (value_sql if value_sql is not none else "null")) -%}
    {%- endfor -%}
    {{ return(
        "select alter_job(job_id => j.job_id"
        ~ (", schedule_interval => " ~ schedule_sql if schedule_sql is not none else "")
        ~ ", config => j.config || jsonb_build_object(" ~ pairs | join(", ") ~ "))"
        ~ " from timescaledb_information.jobs as j where j.job_id = " ~ (job_id | int)
    ) }}
{% endmacro %}
