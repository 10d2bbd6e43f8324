with

source as (

    select * from {{ source('xero', 'contacts') }}

),

renamed as (

    select
        -- ids
        contact_id,

        -- descriptive
        name as contact_name,
        cast(is_supplier as boolean) as is_supplier,
        email,

        -- timestamps (UTC)
        updated_at,
        loaded_at

    from source

)

select * from renamed
