with

source as (

    select * from {{ source('shipbob', 'orders') }}

),

renamed as (

    select
        -- ids: reference_id is the sales channel's order id (Shopify numeric id, Amazon order id)
        cast(id as varchar) as shipbob_order_id,
        reference_id as channel_order_id,
        order_number,
        cast(channel_id as varchar) as channel_id,

        -- statuses
        status,
        type as order_type,

        -- counts
        cast(shipment_count as integer) as shipment_count,
        cast(product_count as integer) as product_count,

        -- money, in the channel's currency as ShipBob received it
        {{ to_money('total_price') }} as total_price,

        -- timestamps (UTC)
        created_date as created_at,
        purchase_date as purchased_at,
        updated_at,
        loaded_at

    from source

)

select * from renamed
