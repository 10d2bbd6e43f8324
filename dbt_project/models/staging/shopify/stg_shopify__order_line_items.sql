with

orders as (

    select * from {{ source('shopify', 'orders') }}

),

line_items as (

    select
        orders.order_id,
        orders.currency,
        coalesce(orders.presentment_currency, orders.currency) as presentment_currency,
        line_item,
        line_position
    from orders,
        unnest({{ json_array('orders.payload', '$.lineItems.nodes') }}) with ordinality as unnested(line_item, line_position)

),

renamed as (

    select
        -- ids
        {{ gid_tail(json_text('line_item', '$.id')) }} as order_line_item_id,
        order_id,
        cast(line_position as integer) as line_position,
        {{ json_text('line_item', '$.sku') }} as sku,
        {{ json_id('line_item', '$.product.legacyResourceId') }} as product_id,
        {{ json_id('line_item', '$.variant.legacyResourceId') }} as variant_id,

        -- descriptive
        {{ json_text('line_item', '$.title') }} as title,
        {{ json_text('line_item', '$.variantTitle') }} as variant_title,
        coalesce(cast({{ json_text('line_item', '$.requiresShipping') }} as boolean), true) as requires_shipping,

        -- quantities: ordered, still on the order after removals, not yet fulfilled
        {{ json_integer('line_item', '$.quantity') }} as quantity,
        {{ json_integer('line_item', '$.currentQuantity') }} as current_quantity,
        {{ json_integer('line_item', '$.unfulfilledQuantity') }} as unfulfilled_quantity,

        -- money
        currency,
        presentment_currency,
        {{ json_money('line_item', '$.originalUnitPriceSet.shopMoney.amount') }} as unit_price,
        {{ json_money('line_item', '$.originalUnitPriceSet.presentmentMoney.amount') }} as unit_price_presentment,
        {{ json_money('line_item', '$.totalDiscountSet.shopMoney.amount') }} as total_discount,
        {{ json_money('line_item', '$.discountedTotalSet.shopMoney.amount') }} as discounted_total,
        {{ json_money('line_item', '$.discountedTotalSet.presentmentMoney.amount') }} as discounted_total_presentment

    from line_items

)

select * from renamed
