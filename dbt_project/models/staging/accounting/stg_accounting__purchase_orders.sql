{#- the books of whichever system var('accounting_system') names; the columns are the same either way -#}
with

source as (

    select * from {{ accounting_staging_model('purchase_orders') }}

)

select * from source
