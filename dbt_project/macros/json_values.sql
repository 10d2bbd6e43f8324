{#-
    Typed reads from a JSON document (the raw payload, or one element of an unnested array).
    Missing keys and JSON nulls both come back as SQL null.
-#}

{% macro json_text(json_expression, path) -%}
    json_extract_string({{ json_expression }}, '{{ path }}')
{%- endmacro %}

{% macro json_timestamp(json_expression, path) -%}
    {#- ISO-8601 with Z or an offset; TIMESTAMPTZ holds the instant, shown in UTC -#}
    cast(json_extract_string({{ json_expression }}, '{{ path }}') as timestamptz)
{%- endmacro %}

{% macro json_integer(json_expression, path) -%}
    cast(json_extract_string({{ json_expression }}, '{{ path }}') as bigint)
{%- endmacro %}

{% macro json_id(json_expression, path) -%}
    {#- ids are text, also where the API sends a number (ShipBob, Shopify GraphQL gid tails) -#}
    cast(json_extract_string({{ json_expression }}, '{{ path }}') as varchar)
{%- endmacro %}

{% macro gid_tail(expression) -%}
    {#- 'gid://shopify/LineItem/149' -> '149': the numeric id the REST API and other systems use -#}
    nullif(regexp_extract({{ expression }}, '/([^/?]+)(\?.*)?$', 1), '')
{%- endmacro %}

{% macro json_array(json_expression, path) -%}
    {#- a JSON array as a list to unnest; an absent or null array is an empty list, so a parent
        without children simply yields no child rows -#}
    coalesce(cast(json_extract({{ json_expression }}, '{{ path }}') as json[]), [])
{%- endmacro %}
