with

source as (

    select * from {{ source('xero', 'deposits') }}

),

renamed as (

    select
        -- ids: reference names the payout or settlement deposited
        deposit_id,
        reference,

        -- statuses: closeloop's accounting vocabulary; direction is in (money received) or out
        direction,
        case status
            when 'AUTHORISED' then 'posted'
            when 'VOIDED' then 'voided'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- money: always positive; direction says which way it moved
        currency,
        {{ to_money('amount') }} as amount,

        -- dates and timestamps (UTC)
        deposited_on,
        updated_at,
        loaded_at

    from source

)

select * from renamed
