with

source as (

    select * from {{ source('shopify', 'products') }}

),

renamed as (

    select
        -- ids
        product_id,
        handle,

        -- descriptive
        title,
        status,
        vendor,
        product_type,
        cast(variant_count as integer) as variant_count,

        -- timestamps (UTC)
        created_at,
        updated_at,
        loaded_at

    from source

)

select * from renamed
