with

shipments as (

    select * from {{ source('shipbob', 'shipments') }}

),

shipment_products as (

    select
        shipments.id as shipment_id,
        shipments.order_id as shipbob_order_id,
        shipments.reference_id as channel_order_id,
        shipment_product,
        product_position
    from shipments,
        unnest({{ json_array('shipments.payload', '$.products') }}) with ordinality
            as unnested(shipment_product, product_position)

),

-- a product ships as one or more inventory items (lots, serials); its quantity is their sum
quantities as (

    select
        shipment_id,
        product_position,
        sum(cast(json_extract_string(inventory_item, '$.quantity') as bigint)) as quantity
    from shipment_products,
        unnest({{ json_array('shipment_products.shipment_product', '$.inventory_items') }}) as unnested(inventory_item)
    group by 1, 2

),

renamed as (

    select
        -- ids: one row per product in a shipment
        cast(shipment_products.shipment_id as varchar) || ':' || cast(shipment_products.product_position as varchar)
            as shipment_product_id,
        cast(shipment_products.shipment_id as varchar) as shipment_id,
        cast(shipment_products.shipbob_order_id as varchar) as shipbob_order_id,
        shipment_products.channel_order_id,
        {{ json_id('shipment_products.shipment_product', '$.id') }} as shipbob_product_id,
        {{ json_text('shipment_products.shipment_product', '$.sku') }} as sku,
        {{ json_text('shipment_products.shipment_product', '$.name') }} as product_name,

        -- quantities: a product listed without inventory items shipped nothing
        cast(coalesce(quantities.quantity, 0) as integer) as quantity

    from shipment_products
    left join quantities
        on shipment_products.shipment_id = quantities.shipment_id
        and shipment_products.product_position = quantities.product_position

)

select * from renamed
