with

source as (

    select * from {{ source('shipbob', 'receiving_orders') }}

),

renamed as (

    select
        -- ids: purchase_order_number is the brand's PO number, the key into accounting
        cast(id as varchar) as receiving_order_id,
        purchase_order_number,
        cast(fulfillment_center_id as varchar) as fulfillment_center_id,

        -- statuses
        status,

        -- quantities, over every SKU on the receiving order
        cast(line_count as integer) as line_count,
        cast(expected_quantity as integer) as expected_quantity,
        cast(received_quantity as integer) as received_quantity,

        -- timestamps (UTC)
        insert_date as created_at,
        expected_arrival_date as expected_arrival_at,
        last_updated_date as updated_at,
        loaded_at

    from source

)

select * from renamed
