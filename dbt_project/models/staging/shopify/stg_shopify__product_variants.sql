with

products as (

    select * from {{ source('shopify', 'products') }}

),

variants as (

    select
        products.product_id,
        variant
    from products,
        unnest({{ json_array('products.payload', '$.variants.nodes') }}) as unnested(variant)

),

renamed as (

    select
        -- ids
        coalesce({{ json_id('variant', '$.legacyResourceId') }}, {{ gid_tail(json_text('variant', '$.id')) }}) as variant_id,
        product_id,
        {{ json_text('variant', '$.sku') }} as sku,
        coalesce({{ json_id('variant', '$.inventoryItem.legacyResourceId') }},
                 {{ gid_tail(json_text('variant', '$.inventoryItem.id')) }}) as inventory_item_id,
        {{ json_text('variant', '$.barcode') }} as barcode,

        -- descriptive
        {{ json_text('variant', '$.title') }} as variant_title,
        {{ json_text('variant', '$.displayName') }} as display_name,
        {{ json_integer('variant', '$.position') }} as position,
        {{ json_integer('variant', '$.inventoryQuantity') }} as inventory_quantity,

        -- money: the price is in the shop currency; the cost carries its own
        {{ json_money('variant', '$.price') }} as price,
        {{ json_money('variant', '$.inventoryItem.unitCost.amount') }} as unit_cost,
        {{ json_text('variant', '$.inventoryItem.unitCost.currencyCode') }} as unit_cost_currency,

        -- timestamps (UTC)
        {{ json_timestamp('variant', '$.createdAt') }} as created_at,
        {{ json_timestamp('variant', '$.updatedAt') }} as updated_at

    from variants

)

select * from renamed
