with

source as (

    select * from {{ source('shopify', 'balance_transactions') }}

),

renamed as (

    select
        -- ids
        transaction_id as balance_transaction_id,
        payout_id,
        source_order_id as order_id,
        source_order_transaction_id as order_transaction_id,
        source_id,
        source_type,

        -- statuses
        type as transaction_type,
        payout_status,
        {{ json_text('payload', '$.adjustmentReason') }} as adjustment_reason,
        coalesce(cast({{ json_text('payload', '$.test') }} as boolean), false) as is_test,

        -- money: amount - fee = net
        currency,
        {{ to_money('amount') }} as amount,
        {{ to_money('coalesce(fee, 0)') }} as fee,
        {{ to_money('net') }} as net,

        -- timestamps (UTC)
        transaction_at,
        loaded_at

    from source

)

select * from renamed
