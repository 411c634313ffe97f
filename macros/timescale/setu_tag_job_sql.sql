{#- The statement that tags the policy job SETU just added on a relation: alter_job merges
    {"setu_managed": true} into the job's config (and sets schedule_interval when given, for
    add_* functions that take none). Only untagged jobs of that kind are touched. -#}
{% macro setu_tag_job_sql(relation, proc_name, schedule_sql=none) %}
    {{ return(
        "select alter_job(job_id => j.job_id"
        ~ (", schedule_interval => " ~ schedule_sql if schedule_sql is not none else "")
        ~ ", config => j.config || jsonb_build_object('setu_managed', true))"
        ~ " from timescaledb_information.jobs as j"
        ~ " where j.proc_name = " ~ sql_literal(proc_name)
        ~ " and " ~ setu_job_relation_where(relation)
        ~ " and coalesce(j.config ->> 'setu_managed', 'false') <> 'true'"
    ) }}
{% endmacro %}
