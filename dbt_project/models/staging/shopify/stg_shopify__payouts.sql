with

source as (

    select * from {{ source('shopify', 'payouts') }}

),

renamed as (

    select
        -- ids
        payout_id,

        -- statuses
        status,
        direction,

        -- money: gross and fee per kind of balance movement, and what reached the bank
        currency,
        {{ to_money('net_amount') }} as net_amount,
        {{ to_money('coalesce(charges_gross, 0)') }} as charges_gross,
        {{ to_money('coalesce(charges_fee, 0)') }} as charges_fee,
        {{ to_money('coalesce(refunds_gross, 0)') }} as refunds_gross,
        {{ to_money('coalesce(refunds_fee, 0)') }} as refunds_fee,
        {{ to_money('coalesce(adjustments_gross, 0)') }} as adjustments_gross,
        {{ to_money('coalesce(adjustments_fee, 0)') }} as adjustments_fee,
        {{ to_money('coalesce(reserved_funds_gross, 0)') }} as reserved_funds_gross,
        {{ to_money('coalesce(reserved_funds_fee, 0)') }} as reserved_funds_fee,

        -- dates and timestamps (UTC)
        issued_at,
        issued_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
