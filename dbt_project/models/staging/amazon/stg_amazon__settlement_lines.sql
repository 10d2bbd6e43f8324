with

source as (

    select * from {{ source('amazon', 'settlement_lines') }}

),

renamed as (

    select
        -- ids: the report's own row identity is settlement and line number
        line_key as settlement_line_id,
        settlement_id,
        cast(line_number as integer) as line_number,
        nullif(order_id, '') as order_id,
        nullif(merchant_order_id, '') as merchant_order_id,
        nullif(order_item_code, '') as order_item_code,
        nullif(adjustment_id, '') as adjustment_id,
        nullif(shipment_id, '') as shipment_id,
        nullif(promotion_id, '') as promotion_id,
        nullif(sku, '') as sku,

        -- what the line is
        transaction_type,
        amount_type,
        amount_description,
        fulfillment_id,
        marketplace_name,
        cast(quantity_purchased as integer) as quantity_purchased,

        -- money: the report prints the currency on its summary row only; the connector copies it onto every line
        currency,
        {{ to_money('amount') }} as amount,

        -- timestamps (UTC)
        posted_at,
        report_id,
        report_created_at,
        loaded_at

    from source

)

select * from renamed
