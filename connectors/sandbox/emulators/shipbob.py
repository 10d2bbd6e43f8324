"""ShipBob (3PL) API emulator: dated versions 2025-07, 2026-01 and 2026-07 under /shipbob.

What it serves (real base https://api.shipbob.com):

- ``GET /{v}/channel``: ``{"items": [...]}``
- ``GET /{v}/order`` (bare JSON array, ``Page``/``Limit``, ``next-page`` header), ``GET /{v}/order/{id}``,
  ``GET /{v}/order/{id}/shipment``, ``GET /{v}/order/{id}/shipment/{sid}``, ``GET /{v}/shipment/{sid}``,
  ``POST /{v}/order``
- ``GET /{v}/inventory`` and ``GET /{v}/inventory/{id}`` (inventory items with their quantities),
  ``GET /{v}/inventory-level`` and ``GET /{v}/inventory-level/{id}`` (2026 levels, cursor envelope)
- ``GET /{v}/receiving``, ``GET /{v}/receiving/{id}``, ``POST /{v}/receiving`` (warehouse receiving orders),
  ``GET /{v}/fulfillment-center``

Every answer is rendered from the world as of the sandbox clock: 3PL orders exist from the
order's creation, shipments from their pick, tracking from the scan out of the warehouse, and
the order's last update is its latest event at or before the clock. Every request counts in
one 150-per-minute sliding window, reported in ``x-remaining-calls``.
"""
from __future__ import annotations

import base64
import json
import math
import threading
from datetime import datetime, timedelta
from urllib.parse import urlencode

import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .shipbob_views import (
    CHANNEL_NAME,
    SOURCE,
    Catalog,
    OrderIndex,
    ShipBobView,
    build_view,
    center_detail,
    format_instant,
    parse_instant_param,
    render_world_orders,
)
from .throttle import SlidingWindow

SUPPORTED_VERSIONS = ("2025-07", "2026-01", "2026-07")
DEPRECATED_VERSIONS = ("1.0", "2.0")
RATE_LIMIT_PER_MINUTE = 150
DEFAULT_LIMIT = 50
MAX_LIMIT = 250
CHANNEL_SCOPES = [
    "channels_read", "orders_read", "orders_write", "inventory_read", "products_read",
    "receiving_read", "receiving_write", "returns_read", "fulfillments_read", "locations_read",
]


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def throttled(retry_after: float) -> Response:
    """ShipBob's 429: its JSON body plus ``x-retry-after`` and ``x-remaining-calls: 0``."""
    seconds = max(1, math.ceil(retry_after))
    return _json(
        {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {seconds} seconds."},
        429,
        {"x-retry-after": str(seconds), "x-remaining-calls": "0"},
    )


def server_error(status: int) -> Response:
    """A 5xx in the shape ShipBob's ASP.NET gateway uses (UNVERIFIED body text)."""
    return _json({"message": "An error has occurred."}, status)


def _validation_error(errors: dict[str, list[str]], status: int = 400) -> Response:
    # ShipBob answers validation problems as an ASP.NET model-state map: field -> messages
    return _json(errors, status)


class BadParameter(ValueError):
    """A query parameter that cannot be parsed: answered with a 400 naming it."""

    def __init__(self, name: str, value: str):
        super().__init__(name)
        self.name = name
        self.value = value


# ----------------------------------------------------------------------------- request plumbing
def _int_list(request: Request, name: str) -> list[int] | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise BadParameter(name, raw) from None


def _str_list(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    return [x.strip() for x in raw.split(",") if x.strip()]


def _bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadParameter(name, raw)


def _instant(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    try:
        return parse_instant_param(raw)
    except ValueError:
        raise BadParameter(name, raw) from None


def _page_and_limit(request: Request) -> tuple[int, int]:
    try:
        page = int(request.query_params.get("Page", "1") or 1)
    except ValueError:
        raise BadParameter("Page", request.query_params.get("Page")) from None
    try:
        limit = int(request.query_params.get("Limit", str(DEFAULT_LIMIT)) or DEFAULT_LIMIT)
    except ValueError:
        raise BadParameter("Limit", request.query_params.get("Limit")) from None
    if limit < 1 or limit > MAX_LIMIT:
        raise BadParameter("Limit", str(limit))
    return max(page, 1), limit


def _paged(request: Request, version: str, resource: str, records: list | pl.DataFrame, render) -> Response:
    """One page of a bare-array list; ``next-page`` names the next page's path when there is one."""
    page, limit = _page_and_limit(request)
    start = (page - 1) * limit
    chunk = records[start:start + limit]
    total = records.height if isinstance(records, pl.DataFrame) else len(records)
    headers = {}
    if start + limit < total:
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("Page", "Limit")]
        params += [("Page", str(page + 1)), ("Limit", str(limit))]
        # a path relative to the API root, as the real one gives (client prefixes its base URL)
        headers["next-page"] = f"/{version}/{resource}?{urlencode(params)}"
    return _json(render(chunk), headers=headers)


class ShipBobApp:
    """The ShipBob emulator's handlers over one sandbox context."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.window = SlidingWindow(RATE_LIMIT_PER_MINUTE, 60.0, ctx.throttle)
        self._catalog: Catalog | None = None
        self._memo: tuple | None = None
        self._memo_lock = threading.Lock()

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.ctx.world)
        return self._catalog

    def view(self) -> ShipBobView:
        """The rendered records, rebuilt when the clock moves or a client writes."""
        # writes change the view as well as the clock, so both stamp the memo
        stamp = (self.ctx.now(), self.ctx.store.count(SOURCE, "order"), self.ctx.store.count(SOURCE, "receiving"))
        with self._memo_lock:
            if self._memo is not None and self._memo[0] == stamp:
                return self._memo[1]
            view = build_view(self.ctx, self.catalog)
            self._memo = (stamp, view)
            return view

    # ---- guard: version, auth, rate limit, channel header
    def guarded(self, handler, write: bool = False):
        async def endpoint(request: Request) -> Response:
            version = request.path_params["version"]
            # answers that do not count against the limit still report it
            untouched = str(self.window.remaining())
            if version not in SUPPORTED_VERSIONS:
                if version.lower().lstrip("v") in DEPRECATED_VERSIONS:
                    message = f"API version {version} is deprecated and no longer served here; use one of {', '.join(SUPPORTED_VERSIONS)}."
                    return _with_remaining(_json({"message": message}, 404), untouched)
                return _with_remaining(_json({"message": "Resource not found."}, 404), untouched)
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if token != self.ctx.credentials.shipbob_token:
                return _with_remaining(_json({"message": "Authorization has been denied for this request."}, 401,
                                             {"WWW-Authenticate": 'Bearer error="invalid_token"'}), untouched)
            admitted, wait = self.window.try_hit()
            if not admitted:
                return throttled(wait)
            remaining = str(self.window.remaining())
            if write:
                channel = request.headers.get("shipbob_channel_id")
                if channel is None or channel.strip() == "":
                    return _with_remaining(_validation_error(
                        {"shipbob_channel_id": ["The shipbob_channel_id header is required."]}), remaining)
                if channel.strip() != str(self.ctx.credentials.shipbob_channel_id):
                    return _with_remaining(_json(
                        {"message": f"Channel {channel} is not accessible with these credentials or lacks write scopes."}, 403), remaining)
            try:
                response = await handler(request, version)
            except BadParameter as exc:
                response = _validation_error({exc.name: [f"The value '{exc.value}' is not valid for {exc.name}."]})
            return _with_remaining(response, remaining)

        return endpoint

    # ---- fulfillment centers
    async def fulfillment_centers(self, request: Request, version: str) -> Response:
        centers = sorted(set(self.catalog.center_names) | {self.catalog.primary_center})
        return _json([center_detail(self.catalog, cid) for cid in centers])

    # ---- channel
    async def channels(self, request: Request, version: str) -> Response:
        return _json({"items": [{
            "id": self.ctx.credentials.shipbob_channel_id,
            "name": CHANNEL_NAME,
            "application_name": "API",
            "scopes": list(CHANNEL_SCOPES),
        }]})

    # ---- orders
    async def list_orders(self, request: Request, version: str) -> Response:
        c = pl.col
        ids = _int_list(request, "IDs")
        references = _str_list(request, "ReferenceIds")
        sort = (request.query_params.get("SortOrder") or "Newest").lower()
        if sort not in ("newest", "oldest"):
            raise BadParameter("SortOrder", request.query_params.get("SortOrder"))
        conditions = []
        if ids is not None:
            conditions.append(c("shipbob_order_id").is_in(pl.Series(ids, dtype=pl.Int64).implode()))
        if references is not None:
            conditions.append(c("reference_id").is_in(pl.Series(references, dtype=pl.String).implode()))
        for name, column, op in (
            ("StartDate", "created_at", "ge"), ("EndDate", "created_at", "le"),
            ("LastUpdateStartDate", "updated_at", "ge"), ("LastUpdateEndDate", "updated_at", "le"),
            ("LastTrackingUpdateStartDate", "last_tracking_update", "ge"),
            ("LastTrackingUpdateEndDate", "last_tracking_update", "le"),
        ):
            bound = _instant(request, name)
            if bound is not None:
                # a null tracking time never matches a tracking bound
                conditions.append(getattr(c(column), op)(bound).fill_null(False))
        for name, column in (("HasTracking", "has_tracking"), ("IsTrackingUploaded", "tracking_uploaded")):
            wanted = _bool(request, name)
            if wanted is not None:
                conditions.append(c(column) == wanted)
        index = self.view().orders
        frame = index.frame.filter(pl.all_horizontal(conditions)) if conditions else index.frame
        if sort == "newest":
            frame = frame.reverse()
        faults = self.ctx.faults[SOURCE]
        return _paged(request, version, "order", frame,
                      lambda chunk: faults.mutate(self.order_bodies(index, chunk), ("id",)))

    def order_bodies(self, index: OrderIndex, rows: pl.DataFrame) -> list[dict]:
        """The bodies of some index rows, in their order."""
        keys = [k for k in rows["order_key"].to_list() if k is not None]
        rendered = render_world_orders(self.ctx, self.catalog, keys, self.ctx.now())
        return [
            rendered[key] if key is not None else index.written[oid]
            for oid, key in zip(rows["shipbob_order_id"].to_list(), rows["order_key"].to_list())
        ]

    def find_order(self, order_id: int | None) -> dict | None:
        """One visible order's body, or None."""
        if order_id is None:
            return None
        index = self.view().orders
        rows = index.frame.filter(pl.col("shipbob_order_id") == order_id)
        return self.order_bodies(index, rows)[0] if rows.height else None

    async def get_order(self, request: Request, version: str) -> Response:
        order = self.find_order(_path_int(request, "order_id"))
        if order is None:
            return _not_found("Order")
        return _json(order)

    async def order_shipments(self, request: Request, version: str) -> Response:
        order = self.find_order(_path_int(request, "order_id"))
        if order is None:
            return _not_found("Order")
        return _json(order["shipments"])

    async def order_shipment(self, request: Request, version: str) -> Response:
        order = self.find_order(_path_int(request, "order_id"))
        if order is None:
            return _not_found("Order")
        sid = _path_int(request, "shipment_id")
        for shipment in order["shipments"]:
            if shipment["id"] == sid:
                return _json(shipment)
        return _not_found("Shipment")

    async def get_shipment(self, request: Request, version: str) -> Response:
        sid = _path_int(request, "shipment_id")
        if sid is None:
            return _not_found("Shipment")
        index = self.view().orders
        if sid in index.written_shipments:
            return _json(index.written_shipments[sid])
        now = self.ctx.now()
        rows = self.ctx.world.table("shipments").filter((pl.col("shipment_id") == sid) & (pl.col("created_at") <= now))
        order = self.find_order(rows["shipbob_order_id"][0]) if rows.height else None
        for shipment in (order or {}).get("shipments", []):
            if shipment["id"] == sid:
                return _json(shipment)
        return _not_found("Shipment")

    async def create_order(self, request: Request, version: str) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            return _validation_error({"": ["A non-empty request body is required."]})
        errors: dict[str, list[str]] = {}
        reference = body.get("reference_id")
        if not reference or not isinstance(reference, str):
            errors["reference_id"] = ["The reference_id field is required."]
        if not body.get("shipping_method"):
            errors["shipping_method"] = ["The shipping_method field is required."]
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not recipient.get("name") or not isinstance(recipient.get("address"), dict):
            errors["recipient"] = ["The recipient field (name and address) is required."]
        products = body.get("products")
        if not isinstance(products, list) or not products:
            errors["products"] = ["At least one product is required."]
        else:
            for i, product in enumerate(products):
                if not isinstance(product, dict) or not (product.get("reference_id") or product.get("id") or product.get("sku")):
                    errors[f"products[{i}].reference_id"] = ["Each product needs a reference_id, id or sku."]
                elif not isinstance(product.get("quantity"), int) or product["quantity"] < 1:
                    errors[f"products[{i}].quantity"] = ["The quantity must be a positive integer."]
        if errors:
            return _validation_error(errors)
        if self.view().orders.frame.filter(pl.col("reference_id") == reference).height:
            return _validation_error({"": ["Cannot insert order with existing ReferenceId"]}, 422)
        now = self.ctx.now()
        catalog = self.catalog
        order_id = self.ctx.store.next_id("shipbob_order_id", catalog.max_order_id)
        shipment_id = self.ctx.store.next_id("shipbob_shipment_id", catalog.max_shipment_id)
        lines = []
        shipment_products = []
        for product in products:
            sku = product.get("sku") or product.get("reference_id")
            if sku is None and product.get("id") is not None:
                sku = next((s for s, v in catalog.variants.items() if v["shipbob_product_id"] == product["id"]), None)
            name = product.get("name") or catalog.item_name(sku)
            lines.append({
                "id": catalog.product_id(sku) if sku else product.get("id"),
                "reference_id": product.get("reference_id") or sku,
                "sku": sku,
                "name": name,
                "quantity": product["quantity"],
                "unit_price": product.get("unit_price"),
                "external_line_id": product.get("external_line_id"),
                "gtin": product.get("gtin"),
                "upc": product.get("upc"),
                "quantity_unit_of_measure_code": product.get("quantity_unit_of_measure_code"),
            })
            components = catalog.bundle_components.get(sku) or [(sku, 1)]
            for component, per in components:
                shipment_products.append({
                    "id": catalog.product_id(component),
                    "reference_id": component,
                    "sku": component,
                    "name": catalog.item_name(component),
                    "inventory_items": [{
                        "id": catalog.inventory_id(component), "name": catalog.item_name(component),
                        "quantity": product["quantity"] * per, "quantity_committed": product["quantity"] * per,
                        "lot": None, "expiration_date": None, "serial_numbers": [], "is_dangerous_goods": False,
                    }],
                })
        stamp = format_instant(now)
        channel = {"id": self.ctx.credentials.shipbob_channel_id, "name": CHANNEL_NAME}
        shipment = {
            "id": shipment_id, "order_id": order_id, "reference_id": reference, "recipient": recipient,
            "created_date": stamp, "last_update_at": stamp, "last_tracking_update_at": None,
            "status": "Processing", "status_details": [], "location": catalog.center(None),
            "invoice_amount": None, "invoice_currency_code": "USD", "insurance_value": None,
            "ship_option": body.get("shipping_method"), "tracking": None, "is_tracking_uploaded": False,
            "products": shipment_products, "actual_fulfillment_date": None,
            "estimated_fulfillment_date": format_instant(now + timedelta(days=2)),
            "estimated_fulfillment_date_status": "PendingOnTime", "delivery_date": None, "measurements": None,
            "package_material_type": "Box", "parent_cartons": [], "require_signature": False,
            "store_order_id": reference, "gift_message": body.get("gift_message"),
        }
        order = {
            "id": order_id,
            "created_date": stamp,
            "purchase_date": body.get("purchase_date") or stamp,
            "reference_id": reference,
            "order_number": body.get("order_number") or reference,
            "status": "Processing",
            "type": body.get("type") or "DTC",
            "channel": channel,
            "shipping_method": body.get("shipping_method"),
            "recipient": recipient,
            "products": lines,
            "tags": body.get("tags") or [],
            "shipments": [shipment],
            "gift_message": body.get("gift_message"),
            "shipping_terms": body.get("shipping_terms") or {"carrier_type": "Parcel", "payment_term": "Prepaid"},
            "retailer_program_data": body.get("retailer_program_data"),
            "financials": body.get("financials") or {"total_price": 0.0},
        }
        self.ctx.store.put(SOURCE, "order", str(order_id), order, at=now)
        return _json(order, 201)

    # ---- inventory
    async def list_inventory(self, request: Request, version: str) -> Response:
        ids = _int_list(request, "IDs")
        active = _bool(request, "IsActive")
        digital = _bool(request, "IsDigital")
        search = (request.query_params.get("Search") or "").strip().lower()
        selected = []
        for item in self.view().inventory:
            if ids is not None and item.id not in ids:
                continue
            if active is not None and item.is_active != active:
                continue
            if digital is True:
                continue
            if search and not (search == str(item.id) or search in item.name.lower()):
                continue
            selected.append(item)
        faults = self.ctx.faults[SOURCE]
        return _paged(request, version, "inventory", selected,
                      lambda chunk: faults.mutate([i.body for i in chunk], ("id",)))

    async def get_inventory(self, request: Request, version: str) -> Response:
        iid = _path_int(request, "inventory_id")
        item = self.view().inventory_by_id.get(iid) if iid is not None else None
        if item is None:
            return _not_found("Inventory")
        return _json(item.body)

    async def list_inventory_levels(self, request: Request, version: str) -> Response:
        """2026 ``inventory-level`` list: ``{first, items, last, next, prev}`` with opaque cursors."""
        ids = _int_list(request, "InventoryIds")
        active = _bool(request, "IsActive")
        search = (request.query_params.get("SearchBy") or "").strip().lower()
        try:
            size = int(request.query_params.get("PageSize") or DEFAULT_LIMIT)
        except ValueError:
            raise BadParameter("PageSize", request.query_params.get("PageSize")) from None
        if size < 1 or size > MAX_LIMIT:
            raise BadParameter("PageSize", str(size))
        cursor = request.query_params.get("Cursor")
        offset = 0
        if cursor:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())["offset"])
            except (ValueError, KeyError, TypeError):
                raise BadParameter("Cursor", cursor) from None
        selected = [
            item for item in self.view().inventory
            if (ids is None or item.id in ids) and (active is None or item.is_active == active)
            and (not search or search in item.sku.lower() or search in item.name.lower() or search == str(item.id))
        ]
        page = selected[offset:offset + size]

        def link(at: int) -> str:
            token = base64.urlsafe_b64encode(json.dumps({"offset": at}).encode()).decode()
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "Cursor"] + [("Cursor", token)]
            return f"/{version}/inventory-level?{urlencode(params)}"

        last_offset = max(0, ((len(selected) - 1) // size) * size)
        body = {
            "first": link(0) if offset > 0 else None,
            "items": self.ctx.faults[SOURCE].mutate([i.level for i in page], ("inventory_id",)),
            "last": link(last_offset) if offset < last_offset else None,
            "next": link(offset + size) if offset + size < len(selected) else None,
            "prev": link(max(0, offset - size)) if offset > 0 else None,
        }
        return _json(body)

    async def get_inventory_level(self, request: Request, version: str) -> Response:
        iid = _path_int(request, "inventory_id")
        item = self.view().inventory_by_id.get(iid) if iid is not None else None
        if item is None:
            return _not_found("Inventory")
        return _json(item.level)

    # ---- receiving
    async def list_receiving(self, request: Request, version: str) -> Response:
        ids = _int_list(request, "IDs")
        statuses = _str_list(request, "Statuses")
        centers = _int_list(request, "FulfillmentCenterIds")
        po_numbers = _str_list(request, "PurchaseOrderNumbers")
        start, end = _instant(request, "InsertStartDate"), _instant(request, "InsertEndDate")
        completed_start = _instant(request, "CompletedStartDate")
        completed_end = _instant(request, "CompletedEndDate")
        external_sync = _bool(request, "ExternalSync")
        status_set = {s.lower() for s in statuses} if statuses else None
        selected = []
        for wro in self.view().receiving:
            if ids is not None and wro.id not in ids:
                continue
            if status_set is not None and wro.status.lower() not in status_set:
                continue
            if centers is not None and wro.fulfillment_center_id not in centers:
                continue
            if po_numbers is not None and wro.po_number not in po_numbers:
                continue
            if start and wro.created < start or end and wro.created > end:
                continue
            if completed_start or completed_end:
                done = wro.completed
                if done is None or completed_start and done < completed_start or completed_end and done > completed_end:
                    continue
            if external_sync is not None and (wro.body["external_sync_timestamp"] is not None) != external_sync:
                continue
            selected.append(wro)
        faults = self.ctx.faults[SOURCE]
        return _paged(request, version, "receiving", selected,
                      lambda chunk: faults.mutate([w.body for w in chunk], ("id",)))

    async def get_receiving(self, request: Request, version: str) -> Response:
        wid = _path_int(request, "wro_id")
        wro = self.view().receiving_by_id.get(wid) if wid is not None else None
        if wro is None:
            return _not_found("Warehouse receiving order")
        return _json(wro.body)

    async def create_receiving(self, request: Request, version: str) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            return _validation_error({"": ["A non-empty request body is required."]})
        catalog = self.catalog
        errors: dict[str, list[str]] = {}
        center = body.get("fulfillment_center")
        known_centers = set(catalog.center_names) | {catalog.primary_center}
        if not isinstance(center, dict) or not isinstance(center.get("id"), int):
            errors["fulfillment_center.id"] = ["The fulfillment_center id is required."]
        elif center["id"] not in known_centers:
            errors["fulfillment_center.id"] = [f"Fulfillment center {center['id']} is not available for receiving."]
        if body.get("package_type") not in ("Package", "Pallet", "FloorLoadedContainer"):
            errors["package_type"] = ["package_type must be one of Package, Pallet, FloorLoadedContainer."]
        if body.get("box_packaging_type") not in ("EverythingInOneBox", "OneSkuPerBox", "MultipleSkuPerBox"):
            errors["box_packaging_type"] = ["box_packaging_type must be one of EverythingInOneBox, OneSkuPerBox, MultipleSkuPerBox."]
        expected_arrival = None
        try:
            expected_arrival = parse_instant_param(body.get("expected_arrival_date"))
        except (ValueError, TypeError, AttributeError):
            pass
        if expected_arrival is None:
            errors["expected_arrival_date"] = ["The expected_arrival_date field is required (ISO-8601)."]
        boxes = body.get("boxes")
        quantities: dict[int, int] = {}
        if not isinstance(boxes, list) or not boxes:
            errors["boxes"] = ["At least one box is required."]
        else:
            for b, box in enumerate(boxes):
                items = box.get("box_items") if isinstance(box, dict) else None
                if not isinstance(items, list) or not items:
                    errors[f"boxes[{b}].box_items"] = ["Each box needs at least one item."]
                    continue
                for i, item in enumerate(items):
                    inventory_id = item.get("inventory_id") if isinstance(item, dict) else None
                    quantity = item.get("quantity") if isinstance(item, dict) else None
                    if inventory_id not in catalog.sku_by_inventory_id:
                        errors[f"boxes[{b}].box_items[{i}].inventory_id"] = [f"Inventory {inventory_id} was not found."]
                    elif not isinstance(quantity, int) or quantity < 1:
                        errors[f"boxes[{b}].box_items[{i}].quantity"] = ["The quantity must be a positive integer."]
                    else:
                        quantities[inventory_id] = quantities.get(inventory_id, 0) + quantity
        if errors:
            return _validation_error(errors)
        po_number = body.get("purchase_order_number")
        if po_number and any(w.po_number == po_number for w in self.view().receiving):
            return _validation_error(
                {"purchase_order_number": [f"A warehouse receiving order with purchase order number {po_number} already exists."]}, 422)
        now = self.ctx.now()
        wro_id = self.ctx.store.next_id("shipbob_wro_id", catalog.max_wro_id)
        stamp = format_instant(now)
        record = {
            "id": wro_id,
            "purchase_order_number": po_number,
            "status": "Awaiting",
            "package_type": body["package_type"],
            "box_packaging_type": body["box_packaging_type"],
            "expected_arrival_date": format_instant(expected_arrival),
            "insert_date": stamp,
            "last_updated_date": stamp,
            "box_labels_uri": f"{self.ctx.source_url(SOURCE)}/{version}/receiving/{wro_id}/labels",
            "fulfillment_center": center_detail(catalog, center["id"]),
            "inventory_quantities": [
                {"inventory_id": iid, "sku": catalog.sku_by_inventory_id[iid], "expected_quantity": qty,
                 "received_quantity": 0, "stowed_quantity": 0}
                for iid, qty in sorted(quantities.items())
            ],
            "status_history": [{"id": 1, "status": "Awaiting", "timestamp": stamp}],
            "external_sync_timestamp": None,
        }
        self.ctx.store.put(SOURCE, "receiving", str(wro_id), record, at=now)
        return _json(record, 201)


def _with_remaining(response: Response, remaining: str) -> Response:
    response.headers["x-remaining-calls"] = remaining
    return response


def _not_found(what: str) -> Response:
    return _json({"message": f"{what} not found."}, 404)


def _path_int(request: Request, name: str) -> int | None:
    try:
        return int(request.path_params[name])
    except (KeyError, ValueError):
        return None


async def _body(request: Request):
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def build(ctx) -> Starlette:
    """The ShipBob emulator app; routes are relative to /shipbob."""
    app = ShipBobApp(ctx)
    g = app.guarded
    routes = [
        Route("/{version}/channel", g(app.channels), methods=["GET"]),
        Route("/{version}/fulfillment-center", g(app.fulfillment_centers), methods=["GET"]),
        Route("/{version}/order", g(app.list_orders), methods=["GET"]),
        Route("/{version}/order", g(app.create_order, write=True), methods=["POST"]),
        Route("/{version}/order/{order_id}", g(app.get_order), methods=["GET"]),
        Route("/{version}/order/{order_id}/shipment", g(app.order_shipments), methods=["GET"]),
        Route("/{version}/order/{order_id}/shipment/{shipment_id}", g(app.order_shipment), methods=["GET"]),
        Route("/{version}/shipment/{shipment_id}", g(app.get_shipment), methods=["GET"]),
        Route("/{version}/inventory", g(app.list_inventory), methods=["GET"]),
        Route("/{version}/inventory/{inventory_id}", g(app.get_inventory), methods=["GET"]),
        Route("/{version}/inventory-level", g(app.list_inventory_levels), methods=["GET"]),
        Route("/{version}/inventory-level/{inventory_id}", g(app.get_inventory_level), methods=["GET"]),
        Route("/{version}/receiving", g(app.list_receiving), methods=["GET"]),
        Route("/{version}/receiving", g(app.create_receiving, write=True), methods=["POST"]),
        Route("/{version}/receiving/{wro_id}", g(app.get_receiving), methods=["GET"]),
    ]
    starlette_app = Starlette(routes=routes)
    starlette_app.state.shipbob = app
    return starlette_app
