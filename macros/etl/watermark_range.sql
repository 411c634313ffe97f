{#- The predicate that selects one batch of a source: ids above the watermark of the model
    whose batch is being applied and at or below the horizon taken for it. The model is the
    one _etl.apply_batch() names in setting setu.batch_model, so an intermediate model that
    filters a batch need not know which model reads it. Outside a batch (dbt show, compile,
    the target's creation) the setting is empty, no watermark row matches and the predicate
    selects nothing. -#}
{% macro watermark_range(source_name, id_column="id") %}
    {%- set key -%}
        model_name = current_setting('setu.batch_model', true)
        and source_name = {{ sql_literal(source_name) }}
    {%- endset -%}
    {{ id_column }} > (select w.last_processed_id from _etl.watermarks as w where {{ key }})
    and {{ id_column }} <= (select w.batch_end_id from _etl.watermarks as w where {{ key }})
{%- endmacro %}

{#- The id of the ETL batch writing a row: Gold sweeps Silver on it. -#}
{% macro etl_batch_id() -%}
    current_setting('setu.etl_batch_id', true)::bigint
{%- endmacro %}
