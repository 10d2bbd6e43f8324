with

source as (

    select * from {{ source('shipbob', 'shipments') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as shipment_id,
        cast(order_id as varchar) as shipbob_order_id,
        reference_id as channel_order_id,
        tracking_number,
        cast(fulfillment_center_id as varchar) as fulfillment_center_id,
        {{ json_text('payload', '$.location.name') }} as fulfillment_center_name,

        -- statuses
        status,
        {{ json_text('payload', '$.estimated_fulfillment_date_status') }} as fulfillment_timeliness,
        carrier,
        carrier_service,
        {{ json_text('payload', '$.ship_option') }} as ship_option,

        -- money: what ShipBob bills the brand for this shipment
        invoice_currency_code as invoice_currency,
        {{ to_money('invoice_amount') }} as invoice_amount,

        -- timestamps (UTC)
        created_date as created_at,
        actual_fulfillment_date as fulfilled_at,
        estimated_fulfillment_date as estimated_fulfillment_at,
        delivery_date as delivered_at,
        last_tracking_update_at,
        last_update_at as updated_at,
        loaded_at

    from source

)

select * from renamed
