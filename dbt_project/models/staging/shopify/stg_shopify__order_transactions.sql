with

orders as (

    select * from {{ source('shopify', 'orders') }}

),

transactions as (

    select
        orders.order_id,
        orders.currency,
        coalesce(orders.presentment_currency, orders.currency) as presentment_currency,
        order_transaction
    from orders,
        unnest({{ json_array('orders.payload', '$.transactions') }}) as unnested(order_transaction)

),

-- a refund lists the transactions that paid it back; that is the only link from a REFUND
-- transaction to its refund, which reconciliation needs to follow a refund into a payout
refund_transactions as (

    select
        {{ gid_tail(json_text('refund_transaction', '$.id')) }} as transaction_id,
        min(coalesce({{ json_id('refund', '$.legacyResourceId') }}, {{ gid_tail(json_text('refund', '$.id')) }}))
            as refund_id
    from orders,
        unnest({{ json_array('orders.payload', '$.refunds') }}) as refunds(refund),
        unnest({{ json_array('refunds.refund', '$.transactions.nodes') }}) as refund_transactions(refund_transaction)
    group by 1

),

renamed as (

    select
        -- ids
        {{ gid_tail(json_text('transactions.order_transaction', '$.id')) }} as transaction_id,
        transactions.order_id,
        {{ gid_tail(json_text('transactions.order_transaction', '$.parentTransaction.id')) }} as parent_transaction_id,
        refund_transactions.refund_id,

        -- what happened
        {{ json_text('transactions.order_transaction', '$.kind') }} as kind,
        {{ json_text('transactions.order_transaction', '$.status') }} as status,
        {{ json_text('transactions.order_transaction', '$.gateway') }} as gateway,
        coalesce(cast({{ json_text('transactions.order_transaction', '$.test') }} as boolean), false) as is_test,

        -- money
        transactions.currency,
        transactions.presentment_currency,
        {{ json_money('transactions.order_transaction', '$.amountSet.shopMoney.amount') }} as amount,
        {{ json_money('transactions.order_transaction', '$.amountSet.presentmentMoney.amount') }} as amount_presentment,

        -- timestamps (UTC)
        {{ json_timestamp('transactions.order_transaction', '$.createdAt') }} as created_at,
        {{ json_timestamp('transactions.order_transaction', '$.processedAt') }} as processed_at

    from transactions
    left join refund_transactions
        on {{ gid_tail(json_text('transactions.order_transaction', '$.id')) }} = refund_transactions.transaction_id

)

select * from renamed
