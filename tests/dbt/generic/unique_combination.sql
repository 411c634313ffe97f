{#- The combination of columns is unique (nulls compare equal): the grain of a model. -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(", ") }}, count(*) as row_count
    from {{ model }}
    group by {{ columns | join(", ") }}
    having count(*) > 1
{% endtest %}
