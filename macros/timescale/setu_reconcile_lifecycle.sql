{#- Project-wide post-hook: reconciles compression (settings and policy), the retention
    policy and the reorder policy of `relation` with its model config, and prints ONE line:
    "setu: <schema>.<table>: compression policy added (after 7 days); retention policy ...".
    Each policy is added when missing, altered with alter_job when its schedule or config
    changed (job id and stats kept), removed when the config no longer asks for it; jobs
    SETU did not create are left alone (docs/timescaledb-config.md, job tagging). Silent
    when nothing is configured and nothing was removed. settings / caps: for tests and Bronze;
    default to the model config and the server. Returns "" (nothing left for the hook). -#}
{% macro setu_reconcile_lifecycle(relation, settings=none, caps=none) %}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- do validate_model_config() if settings is none -%}
    {%- set settings = settings if settings is not none else setu_timescale_config() -%}
    {%- set caps = caps if caps is not none else get_capabilities() -%}
    {%- set configured = [] -%}
    {%- for key in ["compression", "retention_policy", "reorder_policy"]
        if settings.get(key) is not none -%}
        {%- do configured.append(key) -%}
    {%- endfor -%}
    {%- if not configured -%}
        {#- Nothing configured: only a policy SETU added earlier could need removing. -#}
        {%- if not caps["community"] or not setu_relation_has_managed_jobs(relation) -%}
            {{ return("") }}
        {%- endif -%}
    {%- endif -%}
    {%- set messages = [
        setu_reconcile_compression(relation, settings.get("compression"), caps),
        setu_reconcile_retention(relation, settings.get("retention_policy"), caps,
                                 settings.get("retention_guarded", false)),
        setu_reconcile_reorder(relation, settings.get("reorder_policy"), caps),
    ] | select | list -%}
    {%- set unavailable = setu_unavailable_reason(caps) -%}
    {%- if unavailable and messages -%}
        {#- One reason for everything skipped, plus what runs retention instead. -#}
        {%- set asked = [] -%}
        {%- do asked.append("compression") if settings.get("compression") is mapping
            or settings.get("compression") is sameas true -%}
        {%- do asked.append("retention policy") if settings.get("retention_policy") is mapping -%}
        {%- do asked.append("reorder policy") if settings.get("reorder_policy") is mapping -%}
        {%- set retention = settings.get("retention_policy") -%}
        {%- set names = (asked[:-1] | join(", ") ~ " and " ~ asked[-1]) if asked | length > 1
            else asked | join("") -%}
        {%- set messages = [names ~ " skipped: " ~ unavailable
            ~ ("; retention by `setu maintain` ("
               ~ ("drop_chunks" if caps["timescaledb"] else "batched deletes")
               ~ " older than " ~ retention["drop_after"] ~ ")"
               if retention is mapping else "")] -%}
    {%- endif -%}
    {%- do setu_log(relation, messages | join("; ")) if messages -%}
    {{ return("") }}
{% endmacro %}
