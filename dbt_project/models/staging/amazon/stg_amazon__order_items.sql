with

orders as (

    select * from {{ source('amazon', 'orders') }}

),

order_items as (

    select
        orders.order_id,
        order_item
    from orders,
        unnest({{ json_array('orders.payload', '$.orderItems') }}) as unnested(order_item)

),

renamed as (

    select
        -- ids
        {{ json_id('order_item', '$.orderItemId') }} as order_item_id,
        order_id,
        {{ json_text('order_item', '$.product.sellerSku') }} as sku,
        {{ json_text('order_item', '$.product.asin') }} as asin,
        {{ json_text('order_item', '$.product.title') }} as title,

        -- quantities
        {{ json_integer('order_item', '$.quantityOrdered') }} as quantity_ordered,
        coalesce({{ json_integer('order_item', '$.fulfillment.quantityFulfilled') }}, 0) as quantity_fulfilled,
        coalesce({{ json_integer('order_item', '$.fulfillment.quantityUnfulfilled') }}, 0) as quantity_unfulfilled,

        -- money, in the item's currency
        coalesce({{ json_text('order_item', '$.proceeds.proceedsTotal.currencyCode') }},
                 {{ json_text('order_item', '$.product.price.unitPrice.currencyCode') }}) as currency,
        {{ json_money('order_item', '$.product.price.unitPrice.amount') }} as unit_price,
        {{ json_money('order_item', '$.proceeds.proceedsTotal.amount') }} as proceeds_total

    from order_items

)

select * from renamed
