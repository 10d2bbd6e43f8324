with

source as (

    select * from {{ source('shopify', 'orders') }}

),

renamed as (

    select
        -- ids
        order_id,
        name as order_name,
        customer_id,

        -- statuses (Shopify's own enum values)
        financial_status,
        fulfillment_status,
        {{ json_text('payload', '$.cancelReason') }} as cancel_reason,
        {{ json_text('payload', '$.sourceName') }} as source_name,
        coalesce(cast({{ json_text('payload', '$.test') }} as boolean), false) as is_test,
        {{ json_text('payload', '$.shippingAddress.countryCodeV2') }} as shipping_country_code,

        -- money, in the shop currency unless named _presentment (the buyer's currency)
        currency,
        coalesce(presentment_currency, currency) as presentment_currency,
        {{ to_money('total_price') }} as total_price,
        {{ to_money('coalesce(total_price_presentment, total_price)') }} as total_price_presentment,
        {{ to_money('subtotal_price') }} as subtotal_price,
        {{ to_money('total_tax') }} as total_tax,
        {{ to_money('total_shipping') }} as total_shipping,
        {{ to_money('total_discounts') }} as total_discounts,
        {{ to_money('current_total_price') }} as current_total_price,
        {{ to_money('coalesce(total_refunded, 0)') }} as total_refunded,

        -- timestamps (UTC)
        created_at,
        processed_at,
        cancelled_at,
        {{ json_timestamp('payload', '$.closedAt') }} as closed_at,
        updated_at,
        loaded_at

    from source

)

select * from renamed
