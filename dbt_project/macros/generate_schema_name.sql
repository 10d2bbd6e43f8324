{#-
    Models land in the schema their folder configures (staging, marts...) as named, not
    prefixed with the target schema (dbt's default would give main_staging): analysts query
    staging.stg_shopify__orders, and one DuckDB file holds one environment.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
