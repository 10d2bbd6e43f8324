with

source as (

    select * from {{ source('xero', 'payments') }}

),

renamed as (

    select
        -- ids: reference carries the payout or settlement that paid the invoice
        payment_id,
        invoice_id,
        reference,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'AUTHORISED' then 'received'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- money, in the invoice's currency
        {{ to_money('amount') }} as amount,

        -- dates and timestamps (UTC)
        paid_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
