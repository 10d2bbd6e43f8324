with

invoices as (

    select * from {{ source('xero', 'invoices') }}

),

invoice_lines as (

    select
        invoices.invoice_id,
        invoices.currency,
        invoice_line,
        line_position
    from invoices,
        unnest({{ json_array('invoices.payload', '$.LineItems') }}) with ordinality as unnested(invoice_line, line_position)

),

renamed as (

    select
        -- ids
        coalesce({{ json_id('invoice_line', '$.LineItemID') }}, invoice_id || ':' || cast(line_position as varchar))
            as invoice_line_id,
        invoice_id,
        cast(line_position as integer) as line_position,
        -- the item code is the SKU; discount and shipping lines have none
        {{ json_text('invoice_line', '$.ItemCode') }} as sku,
        {{ json_text('invoice_line', '$.Description') }} as description,
        {{ json_text('invoice_line', '$.AccountCode') }} as account_code,
        {{ json_text('invoice_line', '$.TaxType') }} as tax_type,

        -- quantities (Xero allows fractional quantities)
        cast({{ json_text('invoice_line', '$.Quantity') }} as decimal(18, 4)) as quantity,

        -- money, in the invoice's currency
        currency,
        {{ json_money('invoice_line', '$.UnitAmount') }} as unit_amount,
        {{ json_money('invoice_line', '$.LineAmount') }} as line_amount,
        coalesce({{ json_money('invoice_line', '$.TaxAmount') }}, 0) as tax_amount

    from invoice_lines

)

select * from renamed
