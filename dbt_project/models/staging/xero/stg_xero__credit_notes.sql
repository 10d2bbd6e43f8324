with

source as (

    select * from {{ source('xero', 'credit_notes') }}

),

renamed as (

    select
        -- ids: reference carries the channel's refund ("Refund 9100000000104")
        credit_note_id,
        credit_note_number,
        invoice_id,
        {{ json_text('payload', '$.Reference') }} as reference,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'DRAFT' then 'draft'
            when 'SUBMITTED' then 'submitted'
            when 'AUTHORISED' then 'open'
            when 'PAID' then 'applied'
            when 'VOIDED' then 'voided'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- money
        currency,
        {{ to_money('total') }} as total,

        -- dates and timestamps (UTC)
        issued_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
