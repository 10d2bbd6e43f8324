{#-
    The accounting system the brand keeps its books in (var accounting_system, from
    ACCOUNTING_SYSTEM, default xero), checked, so a typo fails at parse time with its name
    rather than as a missing model.
-#}
{% macro accounting_system() -%}
    {%- set system = (var('accounting_system', env_var('ACCOUNTING_SYSTEM', 'xero')) | string | trim | lower) -%}
    {%- if system not in ('xero', 'netsuite') -%}
        {{ exceptions.raise_compiler_error("var accounting_system (ACCOUNTING_SYSTEM) must be one of xero, netsuite, got '" ~ system ~ "'") }}
    {%- endif -%}
    {{ return(system) }}
{%- endmacro %}

{% macro accounting_staging_model(entity) -%}
    {#- the chosen system's staging model for an accounting entity, e.g. stg_netsuite__invoices -#}
    {{ return(ref('stg_' ~ accounting_system() ~ '__' ~ entity)) }}
{%- endmacro %}
