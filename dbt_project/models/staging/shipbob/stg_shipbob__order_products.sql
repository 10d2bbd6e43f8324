with

orders as (

    select * from {{ source('shipbob', 'orders') }}

),

order_products as (

    select
        orders.id as shipbob_order_id,
        orders.reference_id as channel_order_id,
        order_product,
        product_position
    from orders,
        unnest({{ json_array('orders.payload', '$.products') }}) with ordinality as unnested(order_product, product_position)

),

renamed as (

    select
        -- ids: one row per product line the channel sent to ShipBob
        cast(shipbob_order_id as varchar) || ':' || cast(product_position as varchar) as order_product_id,
        cast(shipbob_order_id as varchar) as shipbob_order_id,
        channel_order_id,
        {{ json_id('order_product', '$.id') }} as shipbob_product_id,
        -- the channel's line id (Shopify line item id) when the channel sent one
        {{ json_id('order_product', '$.external_line_id') }} as channel_line_id,
        {{ json_text('order_product', '$.sku') }} as sku,
        {{ json_text('order_product', '$.name') }} as product_name,

        -- quantities
        {{ json_integer('order_product', '$.quantity') }} as quantity,

        -- money
        {{ json_money('order_product', '$.unit_price') }} as unit_price

    from order_products

)

select * from renamed
