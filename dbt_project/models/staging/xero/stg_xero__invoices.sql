with

source as (

    select * from {{ source('xero', 'invoices') }}

),

renamed as (

    select
        -- ids: reference is the sales channel's order id the invoice bills
        invoice_id,
        invoice_number,
        reference,
        contact_id,

        -- statuses: closeloop's accounting vocabulary, the same for every accounting system
        case status
            when 'DRAFT' then 'draft'
            when 'SUBMITTED' then 'submitted'
            when 'AUTHORISED' then 'open'
            when 'PAID' then 'paid'
            when 'VOIDED' then 'voided'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- money
        currency,
        {{ to_money('total') }} as total,
        {{ to_money('amount_due') }} as amount_due,

        -- dates and timestamps (UTC)
        issued_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
