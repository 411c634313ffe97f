{#- "from timescaledb_information.dimensions where <this relation's dimension column>": the
    tail of a conditional statement that runs only when the server's value differs. -#}
{% macro setu_dimension_where(relation, column_name) %}
    {{ return(
        "from timescaledb_information.dimensions"
        ~ " where hypertable_schema = " ~ sql_literal(relation.schema)
        ~ " and hypertable_name = " ~ sql_literal(relation.identifier)
        ~ " and column_name = " ~ sql_literal(column_name)
    ) }}
{% endmacro %}
