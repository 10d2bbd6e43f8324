with

source as (

    select * from {{ source('shopify', 'disputes') }}

),

renamed as (

    select
        -- ids
        dispute_id,
        order_id,

        -- statuses
        type as dispute_type,
        status,
        reason,

        -- money
        currency,
        {{ to_money('amount') }} as amount,

        -- dates and timestamps (UTC)
        initiated_at,
        evidence_due_by,
        finalized_on,
        loaded_at

    from source

)

select * from renamed
