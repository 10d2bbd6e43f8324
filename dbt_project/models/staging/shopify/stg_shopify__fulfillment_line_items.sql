with

orders as (

    select * from {{ source('shopify', 'orders') }}

),

fulfillments as (

    select
        orders.order_id,
        fulfillment
    from orders,
        unnest({{ json_array('orders.payload', '$.fulfillments') }}) as unnested(fulfillment)

),

fulfillment_line_items as (

    select
        fulfillments.order_id,
        fulfillments.fulfillment,
        fulfillment_line_item
    from fulfillments,
        unnest({{ json_array('fulfillments.fulfillment', '$.fulfillmentLineItems.nodes') }})
            as unnested(fulfillment_line_item)

),

renamed as (

    select
        -- ids
        {{ gid_tail(json_text('fulfillment_line_item', '$.id')) }} as fulfillment_line_item_id,
        coalesce({{ json_id('fulfillment', '$.legacyResourceId') }}, {{ gid_tail(json_text('fulfillment', '$.id')) }})
            as fulfillment_id,
        order_id,
        {{ gid_tail(json_text('fulfillment_line_item', '$.lineItem.id')) }} as order_line_item_id,
        {{ json_text('fulfillment_line_item', '$.lineItem.sku') }} as sku,

        -- quantities
        {{ json_integer('fulfillment_line_item', '$.quantity') }} as quantity

    from fulfillment_line_items

)

select * from renamed
