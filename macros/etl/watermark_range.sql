{#- The predicate that selects one batch of a source: ids above the model's watermark and
    at or below the horizon taken for this batch. Outside a batch (dbt show, compile) no
    watermark row matches and the predicate selects nothing. -#}
{% macro watermark_range(model_name, source_name, id_column="id") %}
    {%- set key -%}
        model_name = {{ sql_literal(model_name) }}
        and source_name = {{ sql_literal(source_name) }}
    {%- endset -%}
    {{ id_column }} > (select w.last_processed_id from _etl.watermarks as w where {{ key }})
    and {{ id_column }} <= (select w.batch_end_id from _etl.watermarks as w where {{ key }})
{%- endmacro %}

{#- The id of the ETL batch writing a row: Gold sweeps Silver on it. -#}
{% macro etl_batch_id() -%}
    current_setting('setu.etl_batch_id', true)::bigint
{%- endmacro %}
