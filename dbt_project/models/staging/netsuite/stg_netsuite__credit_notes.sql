with

source as (

    select * from {{ source('netsuite', 'credit_notes') }}

),

renamed as (

    select
        -- ids: reference carries the channel's refund ("Refund 9100000000104")
        credit_note_id,
        credit_note_number,
        invoice_id,
        {{ json_text('payload', '$.memo') }} as reference,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'Open' then 'open'
            when 'Fully Applied' then 'applied'
            when 'Voided' then 'voided'
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
