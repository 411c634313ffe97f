{#- Whether any job tagged as SETU's (config setu_managed = true) works on the relation: a
    model whose config no longer names a policy is only looked at further when one does. -#}
{% macro setu_relation_has_managed_jobs(relation) %}
    {%- set query -%}
        select exists(
            select from timescaledb_information.jobs as j
            where coalesce(j.config ->> 'setu_managed', 'false') = 'true'
                and {{ setu_job_relation_where(relation) }}
        ) as found
    {%- endset -%}
    {{ return(run_query(query).rows[0]["found"]) }}
{% endmacro %}
