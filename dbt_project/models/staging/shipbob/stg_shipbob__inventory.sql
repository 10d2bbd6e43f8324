with

source as (

    select * from {{ source('shipbob', 'inventory') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as inventory_id,
        sku,
        name as inventory_name,
        cast(is_active as boolean) as is_active,

        -- quantities across every fulfillment center
        cast(total_fulfillable_quantity as integer) as fulfillable_quantity,
        cast(total_onhand_quantity as integer) as on_hand_quantity,
        cast(total_committed_quantity as integer) as committed_quantity,
        cast(total_awaiting_quantity as integer) as awaiting_quantity,
        cast(total_sellable_quantity as integer) as sellable_quantity,
        cast(total_backordered_quantity as integer) as backordered_quantity,
        cast(total_exception_quantity as integer) as exception_quantity,

        -- timestamps (UTC)
        loaded_at

    from source

)

select * from renamed
