with

source as (

    select * from {{ source('netsuite', 'invoices') }}

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
            when 'Pending Approval' then 'submitted'
            when 'Open' then 'open'
            when 'Paid In Full' then 'paid'
            when 'Voided' then 'voided'
            when 'Rejected' then 'voided'
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
