with

trackers as (

    select * from {{ source('easypost', 'trackers') }}

),

tracking_details as (

    select
        trackers.id as tracker_id,
        trackers.tracking_code as tracking_number,
        trackers.carrier,
        tracking_detail,
        event_position
    from trackers,
        unnest({{ json_array('trackers.payload', '$.tracking_details') }}) with ordinality
            as unnested(tracking_detail, event_position)

),

renamed as (

    select
        -- ids: one row per scan event, in the order the carrier reported them
        tracker_id || ':' || cast(event_position as varchar) as tracking_event_id,
        tracker_id,
        tracking_number,
        carrier,
        cast(event_position as integer) as event_position,

        -- the event
        {{ json_text('tracking_detail', '$.status') }} as status,
        {{ json_text('tracking_detail', '$.status_detail') }} as status_detail,
        {{ json_text('tracking_detail', '$.message') }} as message,
        {{ json_text('tracking_detail', '$.source') }} as event_source,
        {{ json_text('tracking_detail', '$.tracking_location.city') }} as location_city,
        {{ json_text('tracking_detail', '$.tracking_location.state') }} as location_state,
        {{ json_text('tracking_detail', '$.tracking_location.zip') }} as location_zip,
        {{ json_text('tracking_detail', '$.tracking_location.country') }} as location_country,
        -- a label being created is not a scan: the parcel has not reached the carrier yet
        coalesce({{ json_text('tracking_detail', '$.status') }} not in ('pre_transit', 'unknown'), false) as is_carrier_scan,

        -- timestamps (UTC)
        {{ json_timestamp('tracking_detail', '$.datetime') }} as event_at

    from tracking_details

)

select * from renamed
