with

source as (

    select * from {{ source('netsuite', 'journals') }}

),

renamed as (

    select
        -- ids
        journal_id,

        -- descriptive
        narration,

        -- statuses: closeloop's accounting vocabulary
        case status
            when 'Pending Approval' then 'draft'
            when 'Approved for Posting' then 'posted'
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
