with

source as (

    select * from {{ source('shopify', 'inventory_levels') }}

),

renamed as (

    select
        -- ids: one row per inventory item and location
        level_key as inventory_level_id,
        inventory_item_id,
        location_id,
        sku,
        {{ json_text('payload', '$.location.name') }} as location_name,

        -- quantities (available may go below zero when oversold)
        cast(available as integer) as available_quantity,
        cast(on_hand as integer) as on_hand_quantity,
        cast(committed as integer) as committed_quantity,
        cast(incoming as integer) as incoming_quantity,

        -- timestamps (UTC)
        updated_at,
        loaded_at

    from source

)

select * from renamed
