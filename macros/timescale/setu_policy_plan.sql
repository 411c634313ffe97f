{#- The add / alter / remove / leave decision every policy shares. Pure.
    name: "compression policy"; wanted: whether the model asks for the policy; job: the
    state from setu_policy_job_state (none when the server has no such job); add, alter:
    lists of statements; remove: one statement; detail: "after 7 days", for the log line.
    Returns {"statements": [...], "message": text or none}. Jobs without SETU's tag are
    never altered or removed. -#}
{% macro setu_policy_plan(name, wanted, job, add, alter, remove, detail="") %}
    {%- set suffix = " (" ~ detail ~ ")" if detail else "" -%}
    {%- if job is not none and not job["managed"] -%}
        {{ return({"statements": [], "message": name ~ " left alone: job " ~ job["job_id"]
            ~ " was not created by SETU"}) }}
    {%- elif wanted and job is none -%}
        {{ return({"statements": add, "message": name ~ " added" ~ suffix}) }}
    {%- elif wanted and job["differs"] -%}
        {{ return({"statements": alter, "message": name ~ " updated" ~ suffix ~ ", job "
            ~ job["job_id"] ~ " kept"}) }}
    {%- elif wanted -%}
        {{ return({"statements": [], "message": name ~ " unchanged" ~ suffix}) }}
    {%- elif job is not none -%}
        {{ return({"statements": [remove], "message": name ~ " removed (job " ~ job["job_id"]
            ~ "): no longer configured"}) }}
    {%- endif -%}
    {{ return({"statements": [], "message": none}) }}
{% endmacro %}
