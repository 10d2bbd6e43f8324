{#- the books of whichever system var('accounting_system') names; the columns are the same either way -#}
with

source as (

    select * from {{ accounting_staging_model('invoices') }}

)

select * from source
