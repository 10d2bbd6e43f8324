with

source as (

    select * from {{ source('netsuite', 'purchase_orders') }}

),

renamed as (

    select
        -- ids: po_number is the key the 3PL's receiving orders carry
        purchase_order_id,
        po_number,
        supplier_id,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'Pending Supervisor Approval' then 'submitted'
            when 'Pending Receipt' then 'open'
            when 'Partially Received' then 'open'
            when 'Pending Billing/Partially Received' then 'open'
            -- received in full, waiting for the supplier's bill
            when 'Pending Bill' then 'received'
            when 'Fully Billed' then 'billed'
            when 'Closed' then 'closed'
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
