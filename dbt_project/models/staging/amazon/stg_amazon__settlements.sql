with

source as (

    select * from {{ source('amazon', 'settlements') }}

),

renamed as (

    select
        -- ids
        settlement_id,
        report_id,

        -- money: total_amount is what Amazon deposits; the lines must sum to it
        currency,
        {{ to_money('total_amount') }} as total_amount,
        cast(line_count as integer) as line_count,

        -- timestamps (UTC)
        start_at,
        end_at,
        deposit_at,
        report_created_at,
        loaded_at

    from source

)

select * from renamed
