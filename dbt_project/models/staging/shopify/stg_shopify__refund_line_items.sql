with

orders as (

    select * from {{ source('shopify', 'orders') }}

),

refunds as (

    select
        orders.order_id,
        orders.currency,
        coalesce(orders.presentment_currency, orders.currency) as presentment_currency,
        refund
    from orders,
        unnest({{ json_array('orders.payload', '$.refunds') }}) as unnested(refund)

),

refund_line_items as (

    select
        refunds.order_id,
        refunds.currency,
        refunds.presentment_currency,
        refunds.refund,
        refund_line_item
    from refunds,
        unnest({{ json_array('refunds.refund', '$.refundLineItems.nodes') }}) as unnested(refund_line_item)

),

renamed as (

    select
        -- ids
        {{ gid_tail(json_text('refund_line_item', '$.id')) }} as refund_line_item_id,
        coalesce({{ json_id('refund', '$.legacyResourceId') }}, {{ gid_tail(json_text('refund', '$.id')) }}) as refund_id,
        order_id,
        {{ gid_tail(json_text('refund_line_item', '$.lineItem.id')) }} as order_line_item_id,
        {{ json_text('refund_line_item', '$.lineItem.sku') }} as sku,

        -- quantities and restocking
        {{ json_integer('refund_line_item', '$.quantity') }} as quantity,
        {{ json_text('refund_line_item', '$.restockType') }} as restock_type,
        coalesce(cast({{ json_text('refund_line_item', '$.restocked') }} as boolean), false) as is_restocked,

        -- money
        currency,
        presentment_currency,
        {{ json_money('refund_line_item', '$.subtotalSet.shopMoney.amount') }} as subtotal,
        {{ json_money('refund_line_item', '$.subtotalSet.presentmentMoney.amount') }} as subtotal_presentment,
        coalesce({{ json_money('refund_line_item', '$.totalTaxSet.shopMoney.amount') }}, 0) as total_tax

    from refund_line_items

)

select * from renamed
