"""What ShipBob shows as of the sandbox clock: orders, shipments, receiving orders, inventory.

The handlers in ``shipbob.py`` ask this module for records; it reads the world's tables and
renders them in the 2026-07 shapes. Orders are indexed with one vectorised pass per clock move
and rendered only for the page a client asks for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import polars as pl

SOURCE = "shipbob"
CHANNEL_NAME = "closeloop-sandbox"
# a shipment that never leaves the warehouse is reported as an exception after this long
EXCEPTION_AFTER = timedelta(days=3)
TRACKING_URLS = {
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
}


# ----------------------------------------------------------------------------- formats
def format_instant(value: datetime | None) -> str | None:
    """ShipBob instants: ISO-8601 UTC with an explicit offset, as the 2026 reference shows them."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def format_money(cents: int | None) -> float | None:
    """ShipBob money is a JSON number in major units (``7.77``)."""
    return None if cents is None else round(cents / 100, 2)


def parse_instant_param(text: str | None) -> datetime | None:
    """A date/datetime query parameter; naive values are taken as UTC. Raises ValueError."""
    if text is None or text == "":
        return None
    value = datetime.fromisoformat(text.strip().replace(" ", "+").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# ----------------------------------------------------------------------------- the view as of the clock
@dataclass
class OrderIndex:
    """The 3PL orders visible now, one row each with the facts the list filters need.

    Bodies are rendered only for the page asked for, so a large world costs one vectorised
    pass per clock move rather than one Python render per order.
    """

    # shipbob_order_id, order_key (null for orders clients created), reference_id, created_at,
    # updated_at, has_tracking, tracking_uploaded, last_tracking_update; sorted oldest first
    frame: pl.DataFrame
    written: dict[int, dict] = field(default_factory=dict)
    written_shipments: dict[int, dict] = field(default_factory=dict)


@dataclass
class RenderedReceiving:
    id: int
    body: dict
    created: datetime
    updated: datetime
    status: str
    po_number: str | None
    fulfillment_center_id: int | None
    completed: datetime | None


@dataclass
class RenderedInventory:
    id: int
    body: dict
    level: dict
    sku: str
    name: str
    is_active: bool


@dataclass
class ShipBobView:
    orders: OrderIndex | None = None
    receiving: list[RenderedReceiving] = field(default_factory=list)
    receiving_by_id: dict[int, RenderedReceiving] = field(default_factory=dict)
    inventory: list[RenderedInventory] = field(default_factory=list)
    inventory_by_id: dict[int, RenderedInventory] = field(default_factory=dict)


class Catalog:
    """Static facts the renderers look up: SKUs, bundles, fulfillment centers, ids."""

    def __init__(self, world):
        variants = world.table("variants")
        products = world.table("products").select("product_id", pl.col("title").alias("product_title"), "discontinued_at")
        joined = variants.join(products, on="product_id", how="left")
        self.variants: dict[str, dict] = {row["sku"]: row for row in joined.to_dicts()}
        self.sku_by_inventory_id = {
            row["shipbob_inventory_id"]: sku for sku, row in self.variants.items() if row["shipbob_inventory_id"] is not None
        }
        self.bundle_components: dict[str, list[tuple[str, int]]] = {}
        for row in world.table("bundle_components").to_dicts():
            self.bundle_components.setdefault(row["bundle_sku"], []).append((row["component_sku"], row["quantity"]))
        shipments = world.table("shipments")
        centers = (
            shipments.group_by("fulfillment_center_id")
            .agg(pl.col("fulfillment_center_name").first(), pl.len().alias("n"))
            .sort(["n", "fulfillment_center_id"], descending=[True, False])
        )
        self.center_names: dict[int, str] = {r["fulfillment_center_id"]: r["fulfillment_center_name"] for r in centers.to_dicts()}
        receiving_centers = world.table("receiving_orders")["fulfillment_center_id"].drop_nulls().to_list()
        if centers.height:
            self.primary_center = centers["fulfillment_center_id"][0]
        elif receiving_centers:
            self.primary_center = receiving_centers[0]
        else:
            self.primary_center = 1
        # orders the warehouse ships at some point: a cancellation of one of them never reached
        # the 3PL (the world's "shipped after cancellation"), so the 3PL never shows it cancelled
        self.orders_shipped_ever = set(shipments.filter(pl.col("shipped_at").is_not_null())["order_key"].to_list())
        self.orders_shipped_ever_series = pl.Series("order_key", sorted(self.orders_shipped_ever), dtype=pl.Int64)
        max_order = world.table("orders")["shipbob_order_id"].max()
        max_shipment = shipments["shipment_id"].max()
        max_wro = world.table("receiving_orders")["wro_id"].max()
        self.max_order_id = int(max_order or 0)
        self.max_shipment_id = int(max_shipment or 0)
        self.max_wro_id = int(max_wro or 0)

    def center(self, center_id: int | None) -> dict:
        cid = center_id if center_id is not None else self.primary_center
        return {"id": cid, "name": self.center_names.get(cid, f"Fulfillment Center {cid}")}

    def item_name(self, sku: str) -> str:
        row = self.variants.get(sku)
        if not row:
            return sku
        title = row.get("product_title") or sku
        return f"{title} - {row['title']}" if row.get("title") else title

    def product_id(self, sku: str) -> int | None:
        row = self.variants.get(sku)
        return row["shipbob_product_id"] if row else None

    def inventory_id(self, sku: str) -> int | None:
        row = self.variants.get(sku)
        return row["shipbob_inventory_id"] if row else None

    def expected_units(self, sku: str, quantity: int) -> int:
        """Units the warehouse picks for an order line (bundles count their components)."""
        components = self.bundle_components.get(sku)
        if not components:
            return quantity
        return quantity * sum(q for _, q in components)


def _group(rows: list[dict], key: str) -> dict:
    out: dict = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out


def build_view(ctx, catalog: Catalog) -> ShipBobView:
    """Index the orders and render receiving and inventory as of ``ctx.now()``."""
    now = ctx.now()
    view = ShipBobView(orders=index_orders(ctx, catalog, now))
    _render_receiving(ctx, catalog, view, now)
    _render_inventory(ctx, catalog, view, now)
    return view


INDEX_SCHEMA = {
    "shipbob_order_id": pl.Int64, "order_key": pl.Int64, "reference_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"), "updated_at": pl.Datetime("us", "UTC"),
    "has_tracking": pl.Boolean, "tracking_uploaded": pl.Boolean, "last_tracking_update": pl.Datetime("us", "UTC"),
}


def index_orders(ctx, catalog: Catalog, now: datetime) -> OrderIndex:
    """One row per visible 3PL order; ``updated_at`` is its latest event at or before now.

    The events are the ones that change the rendered order: creation, lines added, a
    cancellation the 3PL heard of, and per shipment its pick, label, scan out, carrier scans,
    the missed promise and the exception flag. It may count an event the body does not show
    (a client then sees the order again); it never misses one that changes the body.
    """
    world = ctx.world
    c = pl.col
    orders = world.table("orders").filter(c("shipbob_order_id").is_not_null() & (c("created_at") <= now)).select(
        "order_key", "shipbob_order_id", c("channel_order_id").alias("reference_id"), "created_at", "cancelled_at",
        "latest_ship_at",
    )
    keys = orders["order_key"].implode()
    lines = (
        world.table("order_lines").filter(c("order_key").is_in(keys) & (c("added_at") <= now))
        .group_by("order_key").agg(c("added_at").max().alias("line_event"))
    )
    ships = (
        world.table("shipments").filter(c("order_key").is_in(keys) & (c("created_at") <= now))
        .select("order_key", "created_at", "shipped_at", "tracking_number", "shopify_fulfillment_id")
        .join(orders.select("order_key", "latest_ship_at"), on="order_key", how="left")
    )
    codes = ships["tracking_number"].drop_nulls().implode()
    labels = world.table("trackers").filter(c("tracking_code").is_in(codes)).group_by("tracking_code").agg(
        c("created_at").min().alias("label_at")
    )
    scans = world.table("tracking_events").filter(c("tracking_code").is_in(codes) & (c("occurred_at") <= now)).group_by(
        "tracking_code"
    ).agg(c("occurred_at").max().alias("last_scan"))
    shipped = c("shipped_at").is_not_null() & (c("shipped_at") <= now)
    promised = pl.coalesce(c("latest_ship_at"), c("created_at") + timedelta(days=2))
    flagged = c("created_at") + EXCEPTION_AFTER
    ships = (
        ships.join(labels, left_on="tracking_number", right_on="tracking_code", how="left")
        .join(scans, left_on="tracking_number", right_on="tracking_code", how="left")
        .with_columns(
            shipment_event=pl.max_horizontal(
                c("created_at"),
                pl.when(shipped).then(c("shipped_at")),
                pl.when(shipped).then(c("last_scan")),
                pl.when(c("label_at") <= now).then(c("label_at")),
                pl.when((promised <= now) & (c("shipped_at").is_null() | (c("shipped_at") > promised))).then(promised),
                pl.when(c("shipped_at").is_null() & (flagged <= now)).then(flagged),
            ),
            shipped=shipped,
            tracking=pl.when(shipped).then(pl.coalesce(c("last_scan"), c("shipped_at"))),
        )
    )
    per_order = ships.group_by("order_key").agg(
        c("shipment_event").max(),
        (c("shipped") & c("tracking_number").is_not_null()).any().alias("has_tracking"),
        (c("shipped") & c("shopify_fulfillment_id").is_not_null()).all().alias("tracking_uploaded"),
        c("tracking").max().alias("last_tracking_update"),
    )
    cancel_heard = (
        c("cancelled_at").is_not_null() & (c("cancelled_at") <= now)
        & ~c("order_key").is_in(catalog.orders_shipped_ever_series.implode())
    )
    frame = (
        orders.join(lines, on="order_key", how="left")
        .join(per_order, on="order_key", how="left")
        .with_columns(
            updated_at=pl.max_horizontal(
                c("created_at"), c("line_event"), c("shipment_event"), pl.when(cancel_heard).then(c("cancelled_at"))
            ),
            has_tracking=c("has_tracking").fill_null(False),
            tracking_uploaded=c("tracking_uploaded").fill_null(False),
        )
        .select(list(INDEX_SCHEMA))
    )
    written: dict[int, dict] = {}
    written_shipments: dict[int, dict] = {}
    rows = []
    for record in ctx.store.all(SOURCE, "order"):
        created = datetime.fromisoformat(record.created_at)
        if created > now:
            continue
        body = record.payload
        written[body["id"]] = body
        for shipment in body["shipments"]:
            written_shipments[shipment["id"]] = shipment
        rows.append({"shipbob_order_id": body["id"], "order_key": None, "reference_id": body["reference_id"],
                     "created_at": created, "updated_at": created, "has_tracking": False,
                     "tracking_uploaded": False, "last_tracking_update": None})
    if rows:
        frame = pl.concat([frame.cast(INDEX_SCHEMA), pl.DataFrame(rows, schema=INDEX_SCHEMA)], how="vertical")
    frame = frame.sort(["created_at", "shipbob_order_id"])
    return OrderIndex(frame, written, written_shipments)


def render_world_orders(ctx, catalog: Catalog, order_keys: list[int], now: datetime) -> dict[int, dict]:
    """Order bodies (with their shipments) for a handful of world orders, by order key."""
    if not order_keys:
        return {}
    world = ctx.world
    c = pl.col
    wanted = pl.Series(order_keys, dtype=pl.Int64).implode()
    channel = {"id": ctx.credentials.shipbob_channel_id, "name": CHANNEL_NAME}
    orders = world.table("orders").filter(c("order_key").is_in(wanted))
    lines = world.table("order_lines").filter(c("order_key").is_in(wanted) & (c("added_at") <= now)).sort(
        ["order_key", "line_index"]
    )
    shipments = world.table("shipments").filter(c("order_key").is_in(wanted) & (c("created_at") <= now)).sort(
        ["order_key", "created_at", "shipment_id"]
    )
    shipment_lines = world.table("shipment_lines").filter(c("shipment_id").is_in(shipments["shipment_id"].implode()))
    codes = shipments["tracking_number"].drop_nulls().implode()
    trackers = world.table("trackers").filter(c("tracking_code").is_in(codes))
    events = world.table("tracking_events").filter(c("tracking_code").is_in(codes) & (c("occurred_at") <= now)).sort(
        ["tracking_code", "seq"]
    )
    lines_by_order = _group(lines.to_dicts(), "order_key")
    shipments_by_order = _group(shipments.to_dicts(), "order_key")
    lines_by_shipment = _group(shipment_lines.to_dicts(), "shipment_id")
    tracker_by_code = {r["tracking_code"]: r for r in trackers.to_dicts()}
    events_by_code = _group(events.to_dicts(), "tracking_code")
    return {
        order["order_key"]: _render_order(order, lines_by_order, shipments_by_order, lines_by_shipment,
                                          tracker_by_code, events_by_code, catalog, channel, now)
        for order in orders.to_dicts()
    }


def recipient_of(order: dict) -> dict:
    """The ship-to of a world order (the world keeps no street or name: synthetic ones stand in)."""
    return {
        "name": f"Customer {order['customer_id']}",
        "address": {
            "address1": f"{100 + (order['customer_id'] or 0) % 9000} Main St",
            "address2": None,
            "company_name": None,
            "city": order["ship_to_city"],
            "state": order["ship_to_state"],
            "country": order["ship_to_country"],
            "zip_code": order["ship_to_zip"],
        },
        "email": order["email"],
        "phone_number": None,
    }


def _render_order(order, lines_by_order, shipments_by_order, lines_by_shipment, tracker_by_code,
                  events_by_code, catalog: Catalog, channel: dict, now: datetime) -> dict:
    key = order["order_key"]
    order_id = order["shipbob_order_id"]
    cancelled = (
        order["cancelled_at"] is not None and order["cancelled_at"] <= now and key not in catalog.orders_shipped_ever
    )
    products = []
    expected_units = 0
    for line in lines_by_order.get(key, []):
        products.append({
            "id": catalog.product_id(line["sku"]),
            "reference_id": line["sku"],
            "sku": line["sku"],
            "name": line["title"],
            "quantity": line["quantity"],
            "unit_price": format_money(line["unit_price_cents"]),
            "external_line_id": line["line_id"],
            "gtin": None,
            "upc": None,
            "quantity_unit_of_measure_code": None,
        })
        expected_units += catalog.expected_units(line["sku"], line["quantity"])

    shipments = []
    shipped_units = 0
    any_shipped = any_exception = False
    for row in shipments_by_order.get(key, []):
        shipment, facts = _render_shipment(row, order, lines_by_shipment, tracker_by_code, events_by_code,
                                           catalog, now, cancelled)
        shipments.append(shipment)
        if facts["shipped"]:
            any_shipped = True
            shipped_units += facts["units"]
        if shipment["status"] == "Exception":
            any_exception = True

    if cancelled and not any_shipped:
        status = "Cancelled"
    elif any_exception:
        status = "Exception"
    elif any_shipped and shipped_units >= expected_units:
        status = "Fulfilled"
    elif any_shipped:
        status = "PartiallyFulfilled"
    else:
        status = "Processing"

    return {
        "id": order_id,
        "created_date": format_instant(order["created_at"]),
        "purchase_date": format_instant(order["created_at"]),
        "reference_id": order["channel_order_id"],
        "order_number": str(order["order_number"]) if order["order_number"] is not None else order["order_name"],
        "status": status,
        "type": "DTC",
        "channel": dict(channel),
        "shipping_method": "Standard",
        "recipient": recipient_of(order),
        "products": products,
        "tags": [{"name": "channel", "value": order["channel"]}],
        "shipments": shipments,
        "gift_message": None,
        "shipping_terms": {"carrier_type": "Parcel", "payment_term": "Prepaid"},
        "retailer_program_data": None,
        "financials": {"total_price": format_money(order["total_cents"])},
    }


def _render_shipment(row, order, lines_by_shipment, tracker_by_code, events_by_code, catalog: Catalog,
                     now: datetime, order_cancelled: bool) -> tuple[dict, dict]:
    code = row["tracking_number"]
    shipped = row["shipped_at"] is not None and row["shipped_at"] <= now
    tracker = tracker_by_code.get(code) if code else None
    labeled = tracker is not None and tracker["created_at"] is not None and tracker["created_at"] <= now
    scans = events_by_code.get(code, []) if shipped else []
    events = [row["created_at"]]
    status_details = []
    if shipped:
        status = "Completed"
        events.append(row["shipped_at"])
        events.extend(e["occurred_at"] for e in scans)
    elif order_cancelled:
        status = "Cancelled"
        events.append(order["cancelled_at"])
    elif row["shipped_at"] is None and now - row["created_at"] > EXCEPTION_AFTER:
        # the world never ships it: the 3PL flags the shipment (stock or address problem)
        status = "Exception"
        events.append(row["created_at"] + EXCEPTION_AFTER)
        status_details = [{
            "id": 1, "name": "OutOfStock", "description": "One or more items are out of stock",
            "exception_fulfillment_center_id": row["fulfillment_center_id"], "inventory_id": None,
        }]
    elif labeled:
        status = "LabeledCreated"
        events.append(tracker["created_at"])
    else:
        status = "Processing"
    delivered = [e["occurred_at"] for e in scans if e["status"] == "delivered"]
    last_tracking = max((e["occurred_at"] for e in scans), default=row["shipped_at"] if shipped else None)
    units = 0
    products = []
    for line in sorted(lines_by_shipment.get(row["shipment_id"], []), key=lambda r: r["sku"]):
        units += line["quantity"]
        name = catalog.item_name(line["sku"])
        products.append({
            "id": catalog.product_id(line["sku"]),
            "reference_id": line["sku"],
            "sku": line["sku"],
            "name": name,
            "inventory_items": [{
                "id": catalog.inventory_id(line["sku"]),
                "name": name,
                "quantity": line["quantity"],
                "quantity_committed": 0 if shipped else line["quantity"],
                "lot": None,
                "expiration_date": None,
                "serial_numbers": [],
                "is_dangerous_goods": False,
            }],
        })
    promised = order["latest_ship_at"] or (row["created_at"] + timedelta(days=2))
    if shipped:
        edf_status = "FulfilledOnTime" if row["shipped_at"] <= promised else "FulfilledLate"
    elif status == "Cancelled":
        edf_status = "Unavailable"
    elif now <= promised:
        edf_status = "PendingOnTime"
    else:
        # passing the promise changes the record, so it counts as an update
        edf_status = "PendingLate"
        events.append(promised)
    carrier = row["carrier"]
    tracking = None
    if shipped and code:
        tracking = {
            "carrier": carrier,
            "carrier_service": row["carrier_service"],
            "tracking_number": code,
            "tracking_url": TRACKING_URLS.get(carrier, "https://www.google.com/search?q={}").format(code),
            "shipping_date": format_instant(row["shipped_at"]),
            "bol": None,
            "pro_number": None,
            "scac": None,
        }
    updated = max(e for e in events if e is not None and e <= now)
    shipment = {
        "id": row["shipment_id"],
        "order_id": order["shipbob_order_id"],
        "reference_id": order["channel_order_id"],
        "recipient": recipient_of(order),
        "created_date": format_instant(row["created_at"]),
        "last_update_at": format_instant(updated),
        "last_tracking_update_at": format_instant(last_tracking) if shipped else None,
        "status": status,
        "status_details": status_details,
        "location": catalog.center(row["fulfillment_center_id"]),
        "invoice_amount": format_money(row["invoice_amount_cents"]) if shipped else None,
        "invoice_currency_code": "USD",
        "insurance_value": None,
        "ship_option": "Standard",
        "tracking": tracking,
        "is_tracking_uploaded": bool(shipped and row["shopify_fulfillment_id"] is not None),
        "products": products,
        "actual_fulfillment_date": format_instant(row["shipped_at"]) if shipped else None,
        "estimated_fulfillment_date": format_instant(promised),
        "estimated_fulfillment_date_status": edf_status,
        "delivery_date": format_instant(min(delivered)) if delivered else None,
        "measurements": None,
        "package_material_type": "Box",
        "parent_cartons": [],
        "require_signature": False,
        "store_order_id": order["channel_order_id"],
        "gift_message": None,
    }
    facts = {"shipped": shipped, "units": units}
    return shipment, facts


def center_detail(catalog: Catalog, center_id: int | None) -> dict:
    center = catalog.center(center_id)
    return {**center, "timezone": "Central Standard Time", "address1": None, "address2": None,
            "city": None, "state": None, "country": "US", "zip_code": None, "phone_number": None, "email": None}


def _render_receiving(ctx, catalog: Catalog, view: ShipBobView, now: datetime) -> None:
    world = ctx.world
    wros = world.table("receiving_orders").filter(pl.col("created_at") <= now)
    lines = _group(world.table("receiving_lines").filter(pl.col("wro_id").is_in(wros["wro_id"].implode())).to_dicts(), "wro_id")
    version = "2026-07"
    labels_root = f"{ctx.source_url(SOURCE)}/{version}/receiving"
    for wro in wros.to_dicts():
        arrived = wro["arrived_at"] is not None and wro["arrived_at"] <= now
        completed = wro["completed_at"] is not None and wro["completed_at"] <= now
        history = [{"id": 1, "status": "Awaiting", "timestamp": format_instant(wro["created_at"])}]
        updated = wro["created_at"]
        status = "Awaiting"
        if arrived:
            status = "Arrived"
            updated = wro["arrived_at"]
            history.append({"id": 2, "status": "Arrived", "timestamp": format_instant(wro["arrived_at"])})
        if completed:
            status = "Completed"
            updated = max(updated, wro["completed_at"])
            history.append({"id": 3, "status": "Completed", "timestamp": format_instant(wro["completed_at"])})
        quantities = []
        for line in sorted(lines.get(wro["wro_id"], []), key=lambda r: r["sku"]):
            received = line["received_quantity"] if completed and line["received_quantity"] is not None else 0
            quantities.append({
                "inventory_id": catalog.inventory_id(line["sku"]),
                "sku": line["sku"],
                "expected_quantity": line["expected_quantity"],
                "received_quantity": received,
                "stowed_quantity": received,
            })
        expected = wro["expected_arrival_date"]
        body = {
            "id": wro["wro_id"],
            "purchase_order_number": wro["po_number"],
            "status": status,
            "package_type": "Package",
            "box_packaging_type": "EverythingInOneBox",
            "expected_arrival_date": format_instant(datetime(expected.year, expected.month, expected.day, tzinfo=timezone.utc)) if expected else None,
            "insert_date": format_instant(wro["created_at"]),
            "last_updated_date": format_instant(updated),
            "box_labels_uri": f"{labels_root}/{wro['wro_id']}/labels",
            "fulfillment_center": center_detail(catalog, wro["fulfillment_center_id"]),
            "inventory_quantities": quantities,
            "status_history": history,
            "external_sync_timestamp": None,
        }
        view.receiving.append(RenderedReceiving(wro["wro_id"], body, wro["created_at"], updated, status,
                                                wro["po_number"], wro["fulfillment_center_id"],
                                                wro["completed_at"] if completed else None))
    for record in ctx.store.all(SOURCE, "receiving"):
        created = datetime.fromisoformat(record.created_at)
        if created > now:
            continue
        body = record.payload
        view.receiving.append(RenderedReceiving(int(record.record_id), body, created, created, body["status"],
                                                body["purchase_order_number"], body["fulfillment_center"]["id"], None))
    view.receiving.sort(key=lambda r: (r.created, r.id))
    view.receiving_by_id = {r.id: r for r in view.receiving}


def _render_inventory(ctx, catalog: Catalog, view: ShipBobView, now: datetime) -> None:
    today = now.astimezone(timezone.utc).date()
    daily = ctx.world.table("inventory_daily").filter(pl.col("date") < today)
    latest = daily.sort("date").group_by("sku").last()
    levels = {r["sku"]: r for r in latest.to_dicts()}
    center = catalog.center(None)
    for sku, variant in sorted(catalog.variants.items(), key=lambda kv: (kv[1]["shipbob_inventory_id"] or 0)):
        if variant["is_bundle"] or variant["shipbob_inventory_id"] is None:
            continue
        if variant["created_at"] is not None and variant["created_at"] > now:
            continue
        level = levels.get(sku, {})
        on_hand = level.get("on_hand", 0) or 0
        committed = level.get("committed", 0) or 0
        fulfillable = level.get("fulfillable", 0) or 0
        awaiting = level.get("awaiting", 0) or 0
        discontinued = variant.get("discontinued_at")
        is_active = not (discontinued is not None and discontinued <= now)
        name = catalog.item_name(sku)
        inventory_id = variant["shipbob_inventory_id"]
        body = {
            "id": inventory_id,
            "name": name,
            "sku": sku,
            "is_active": is_active,
            "is_digital": False,
            "is_lot": False,
            "is_case_pick": False,
            "total_fulfillable_quantity": fulfillable,
            "total_onhand_quantity": on_hand,
            "total_committed_quantity": committed,
            "total_sellable_quantity": fulfillable,
            "total_awaiting_quantity": awaiting,
            "total_exception_quantity": 0,
            "total_internal_transfer_quantity": 0,
            "total_backordered_quantity": 0,
            "fulfillable_quantity_by_fulfillment_center": [{
                "id": center["id"],
                "name": center["name"],
                "fulfillable_quantity": fulfillable,
                "onhand_quantity": on_hand,
                "committed_quantity": committed,
                "awaiting_quantity": awaiting,
                "internal_transfer_quantity": 0,
            }],
            "fulfillable_quantity_by_lot": [],
            "dimensions": {"weight": round((variant["weight_grams"] or 0) / 28.3495, 2), "length": 0, "width": 0, "depth": 0},
            "packaging_attribute": "None",
        }
        level_body = {
            "inventory_id": inventory_id,
            "name": name,
            "sku": sku,
            "total_awaiting_quantity": awaiting,
            "total_backordered_quantity": 0,
            "total_committed_quantity": committed,
            "total_exception_quantity": 0,
            "total_fulfillable_quantity": fulfillable,
            "total_internal_transfer_quantity": 0,
            "total_on_hand_quantity": on_hand,
            "total_sellable_quantity": fulfillable,
        }
        view.inventory.append(RenderedInventory(inventory_id, body, level_body, sku, name, is_active))
    view.inventory_by_id = {i.id: i for i in view.inventory}
