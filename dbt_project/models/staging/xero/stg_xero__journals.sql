with

source as (

    select * from {{ source('xero', 'journals') }}

),

renamed as (

    select
        -- ids
        journal_id,

        -- descriptive
        narration,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'DRAFT' then 'draft'
            when 'POSTED' then 'posted'
            when 'VOIDED' then 'voided'
            when 'DELETED' then 'deleted'
            else lower(status)
        end as status,
        status as source_status,

        -- dates and timestamps (UTC)
        journal_date,
        updated_at,
        loaded_at

    from source

)

select * from renamed
