{#- A physical measure's non-null values lie in [min_value, max_value] (either may be none). -#}
{% test within_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }}
    from {{ model }}
    where
        {{ column_name }} is not null
        and {{ is_out_of_range(column_name, min_value, max_value) }}
{% endtest %}
