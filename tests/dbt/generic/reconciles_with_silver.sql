{#- The contract's reconciliation ("nothing is lost"), on a Bronze source: every Bronze id at
    or below the fact model's watermark lands exactly once, in the fact (bronze_id) or in
    silver.quarantine (source_table, bronze_id), and every landed row points to a Bronze row.
    Returns one row per offending id. Landed rows older than the oldest Bronze row left are
    not orphans: Bronze retention dropped their chunks. -#}
{% test reconciles_with_silver(model, fact_model, source_table, fact_time_column=none) %}
    {%- set source_name = model.schema ~ "." ~ model.identifier -%}
    {%- set fact_time_column = fact_time_column
        or bronze_contract(source_table)["fact_time_column"] -%}
with

watermark as (
    select coalesce(max(last_processed_id), 0) as last_processed_id
    from _etl.watermarks
    where
        model_name = {{ sql_literal(fact_model.identifier) }}
        and source_name = {{ sql_literal(source_name) }}
),

bronze_rows as (
    select
        id as bronze_id,
        time
    from {{ model }}
),

oldest_bronze as (
    select min(time) as oldest_time
    from bronze_rows
),

landed as (
    select
        bronze_id,
        {{ adapter.quote(fact_time_column) }} as time
    from {{ fact_model }}
    union all
    select
        bronze_id,
        time
    from {{ ref('quarantine') }}
    where source_table = {{ sql_literal(source_table) }}
),

landed_counts as (
    select
        bronze_id,
        count(*) as times_landed,
        min(time) as time
    from landed
    group by bronze_id
),

missing_or_repeated as (
    select
        bronze_rows.bronze_id,
        coalesce(landed_counts.times_landed, 0) as times_landed,
        case
            when landed_counts.bronze_id is null then 'not in the fact nor in quarantine'
            else 'landed more than once'
        end as problem
    from bronze_rows
    cross join watermark
    left join landed_counts on bronze_rows.bronze_id = landed_counts.bronze_id
    where
        bronze_rows.bronze_id <= watermark.last_processed_id
        and coalesce(landed_counts.times_landed, 0) != 1
),

unexplained as (
    select
        landed_counts.bronze_id,
        landed_counts.times_landed,
        case
            when bronze_rows.bronze_id is null then 'no such Bronze row'
            else 'beyond the watermark'
        end as problem
    from landed_counts
    cross join watermark
    cross join oldest_bronze
    left join bronze_rows on landed_counts.bronze_id = bronze_rows.bronze_id
    where
        (bronze_rows.bronze_id is null and landed_counts.time >= oldest_bronze.oldest_time)
        or landed_counts.bronze_id > watermark.last_processed_id
),

final as (
    select * from missing_or_repeated
    union all
    select * from unexplained
)

select * from final
{% endtest %}
