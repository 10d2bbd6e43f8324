with

source as (

    select * from {{ source('netsuite', 'items') }}

),

renamed as (

    select
        -- ids
        item_id,
        sku,

        -- descriptive
        name as item_name,

        -- timestamps (UTC)
        updated_at,
        loaded_at

    from source

)

select * from renamed
