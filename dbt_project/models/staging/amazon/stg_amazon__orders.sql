with

source as (

    select * from {{ source('amazon', 'orders') }}

),

renamed as (

    select
        -- ids
        order_id,
        marketplace_id,
        {{ json_text('payload', '$.salesChannel.marketplaceName') }} as marketplace_name,
        sales_channel,

        -- statuses
        fulfillment_status,
        fulfilled_by,
        {{ json_text('payload', '$.fulfillment.fulfillmentServiceLevel') }} as fulfillment_service_level,

        -- quantities
        cast(items_ordered as integer) as items_ordered,
        cast(items_fulfilled as integer) as items_fulfilled,
        cast(package_count as integer) as package_count,

        -- money
        currency,
        {{ to_money('order_total') }} as order_total,

        -- timestamps (UTC)
        created_at,
        latest_ship_at,
        updated_at,
        loaded_at

    from source

)

select * from renamed
