with

source as (

    select * from {{ source('easypost', 'trackers') }}

),

renamed as (

    select
        -- ids: tracking_code is the carrier's tracking number, the key to ShipBob shipments
        id as tracker_id,
        tracking_code as tracking_number,
        shipment_id as easypost_shipment_id,
        carrier,
        {{ json_text('payload', '$.carrier_detail.service') }} as carrier_service,

        -- statuses (EasyPost's vocabulary)
        status,
        status_detail,
        coalesce(cast({{ json_text('payload', '$.is_return') }} as boolean), false) as is_return,
        coalesce(cast({{ json_text('payload', '$.finalized') }} as boolean), false) as is_finalized,
        cast(len({{ json_array('payload', '$.tracking_details') }}) as integer) as tracking_detail_count,

        -- timestamps (UTC)
        created_at,
        est_delivery_date as estimated_delivery_at,
        last_scan_at,
        delivered_at,
        updated_at,
        loaded_at

    from source

)

select * from renamed
