with

source as (

    select * from {{ source('xero', 'purchase_orders') }}

),

renamed as (

    select
        -- ids: po_number is the key the 3PL's receiving orders carry
        purchase_order_id,
        po_number,
        supplier_id,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'DRAFT' then 'draft'
            when 'SUBMITTED' then 'submitted'
            when 'AUTHORISED' then 'open'
            when 'BILLED' then 'billed'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- money
        currency,
        {{ to_money('total') }} as total,

        -- dates and timestamps (UTC)
        ordered_on,
        expected_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
