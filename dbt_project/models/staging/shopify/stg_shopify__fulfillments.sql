with

orders as (

    select * from {{ source('shopify', 'orders') }}

),

fulfillments as (

    select
        orders.order_id,
        fulfillment
    from orders,
        unnest({{ json_array('orders.payload', '$.fulfillments') }}) as unnested(fulfillment)

),

renamed as (

    select
        -- ids
        coalesce({{ json_id('fulfillment', '$.legacyResourceId') }}, {{ gid_tail(json_text('fulfillment', '$.id')) }})
            as fulfillment_id,
        order_id,
        {{ json_text('fulfillment', '$.name') }} as fulfillment_name,
        {{ json_id('fulfillment', '$.location.legacyResourceId') }} as location_id,

        -- statuses
        {{ json_text('fulfillment', '$.status') }} as status,
        {{ json_text('fulfillment', '$.displayStatus') }} as display_status,
        {{ json_integer('fulfillment', '$.totalQuantity') }} as total_quantity,

        -- tracking: a fulfillment may carry several parcels; the first is the usual one-parcel case
        {{ json_text('fulfillment', '$.trackingInfo[0].company') }} as tracking_company,
        {{ json_text('fulfillment', '$.trackingInfo[0].number') }} as tracking_number,
        {{ json_text('fulfillment', '$.trackingInfo[0].url') }} as tracking_url,
        cast(json_extract_string(fulfillment, '$.trackingInfo[*].number') as varchar[]) as tracking_numbers,

        -- timestamps (UTC)
        {{ json_timestamp('fulfillment', '$.createdAt') }} as created_at,
        {{ json_timestamp('fulfillment', '$.inTransitAt') }} as in_transit_at,
        {{ json_timestamp('fulfillment', '$.deliveredAt') }} as delivered_at,
        {{ json_timestamp('fulfillment', '$.updatedAt') }} as updated_at

    from fulfillments

)

select * from renamed
