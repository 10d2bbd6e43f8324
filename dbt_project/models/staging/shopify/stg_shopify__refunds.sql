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

renamed as (

    select
        -- ids
        coalesce({{ json_id('refund', '$.legacyResourceId') }}, {{ gid_tail(json_text('refund', '$.id')) }}) as refund_id,
        order_id,

        -- descriptive
        {{ json_text('refund', '$.note') }} as note,
        -- a refund of shipping or an appeasement has money but no lines
        cast(len({{ json_array('refund', '$.refundLineItems.nodes') }}) as integer) as refund_line_count,

        -- money
        currency,
        presentment_currency,
        coalesce({{ json_money('refund', '$.totalRefundedSet.shopMoney.amount') }}, 0) as total_refunded,
        coalesce({{ json_money('refund', '$.totalRefundedSet.presentmentMoney.amount') }}, 0) as total_refunded_presentment,

        -- timestamps (UTC)
        {{ json_timestamp('refund', '$.createdAt') }} as created_at,
        {{ json_timestamp('refund', '$.updatedAt') }} as updated_at

    from refunds

)

select * from renamed
