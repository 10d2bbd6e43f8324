with

receiving_orders as (

    select * from {{ source('shipbob', 'receiving_orders') }}

),

receiving_order_lines as (

    select
        receiving_orders.id as receiving_order_id,
        receiving_orders.purchase_order_number,
        receiving_line,
        line_position
    from receiving_orders,
        unnest({{ json_array('receiving_orders.payload', '$.inventory_quantities') }}) with ordinality
            as unnested(receiving_line, line_position)

),

renamed as (

    select
        -- ids: one row per SKU on a receiving order
        cast(receiving_order_id as varchar) || ':' || cast(line_position as varchar) as receiving_order_line_id,
        cast(receiving_order_id as varchar) as receiving_order_id,
        purchase_order_number,
        {{ json_id('receiving_line', '$.inventory_id') }} as inventory_id,
        {{ json_text('receiving_line', '$.sku') }} as sku,

        -- quantities
        coalesce({{ json_integer('receiving_line', '$.expected_quantity') }}, 0) as expected_quantity,
        coalesce({{ json_integer('receiving_line', '$.received_quantity') }}, 0) as received_quantity,
        coalesce({{ json_integer('receiving_line', '$.stowed_quantity') }}, 0) as stowed_quantity

    from receiving_order_lines

)

select * from renamed
