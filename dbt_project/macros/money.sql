{#-
    Money in the warehouse is DECIMAL(18,2) in the record's own currency. The raw layer keeps
    the connectors' parsed amounts as DOUBLE and the API's exact strings in the payload; these
    macros are the one place that turns either into money, so the precision is decided once.
-#}

{% macro to_money(expression) -%}
    cast({{ expression }} as decimal(18, 2))
{%- endmacro %}

{% macro json_money(json_expression, path) -%}
    {#- an amount inside a JSON document (Shopify sends strings like "12.30", others numbers) -#}
    cast(json_extract_string({{ json_expression }}, '{{ path }}') as decimal(18, 2))
{%- endmacro %}
