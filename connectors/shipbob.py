"""ShipBob (3PL) API: a bearer PAT, dated versions in the path, ``Page``/``Limit`` lists that name
their next page in a ``next-page`` header, the 150-a-minute sliding window, and ``reference_id``
(orders) / ``purchase_order_number`` (receiving orders) as the keys that make writes safe to retry."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from .ingest import Page, Stream
from .pacing import SlidingWindowPacer, rate_limit_scale
from .records import Field, FieldError, RecordShape, as_instant, dig
from .transport import ApiClient, SourceError

DEFAULT_VERSION = "2026-07"
PAGE_SIZE = 250  # ShipBob's largest page: fewest calls against 150 a minute
REQUESTS_PER_MINUTE = 150
# marks, in the shipments stream, an order whose payload came without its shipments list
DAMAGED_ORDER = "_closeloop_order_without_shipments"


def _require(env, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class ShipBobSettings:
    base_url: str  # the API root, e.g. https://api.shipbob.com; the version is a path segment after it
    access_token: str
    channel_id: int | None = None  # the shipbob_channel_id header writes need
    api_version: str = DEFAULT_VERSION

    @classmethod
    def from_env(cls, env=os.environ) -> "ShipBobSettings":
        """Settings from SHIPBOB_BASE_URL, SHIPBOB_ACCESS_TOKEN, SHIPBOB_CHANNEL_ID, SHIPBOB_API_VERSION."""
        raw_channel = env.get("SHIPBOB_CHANNEL_ID", "").strip()
        channel = None
        if raw_channel:
            try:
                channel = int(raw_channel)
            except ValueError:
                raise ValueError(f"SHIPBOB_CHANNEL_ID must be a whole number, got {raw_channel!r}") from None
        return cls(base_url=_require(env, "SHIPBOB_BASE_URL"), access_token=_require(env, "SHIPBOB_ACCESS_TOKEN"),
                   channel_id=channel, api_version=env.get("SHIPBOB_API_VERSION", "").strip() or DEFAULT_VERSION)

    def __repr__(self) -> str:  # never print the token
        return (f"ShipBobSettings(base_url={self.base_url!r}, channel_id={self.channel_id!r}, "
                f"api_version={self.api_version!r})")


class ShipBobPacer(SlidingWindowPacer):
    """The 150-a-minute window, plus ShipBob's own word: ``x-remaining-calls: 0`` holds every
    request until the window frees (``x-retry-after`` when the answer carries it)."""

    def observe(self, headers, body=None) -> None:
        if headers.get("x-remaining-calls", "").strip() != "0":
            return
        asked = headers.get("x-retry-after")
        try:
            wait = float(asked) if asked else None
        except ValueError:
            wait = None
        if wait is None:
            # no figure given: wait until our oldest call in the window leaves it; when the
            # budget is spent by other clients too (we sent fewer than the limit), a whole window
            with self.lock:
                oldest = self.sent[0] if len(self.sent) >= self.limit else None
            wait = (oldest + self.window - time.monotonic()) if oldest is not None else self.window
        self.pause(max(wait, 0.0))


class ShipBobClient(ApiClient):
    source = "shipbob"

    def __init__(self, settings: ShipBobSettings, page_size: int = PAGE_SIZE, **kw):
        scale = rate_limit_scale()
        super().__init__(settings.base_url, headers={"Accept": "application/json"},
                         pacer=kw.pop("pacer", None) or ShipBobPacer(REQUESTS_PER_MINUTE, 60.0 / scale), **kw)
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"shipbob: page_size must be 1..{PAGE_SIZE}, got {page_size}")
        self.settings = settings
        self.page_size = page_size
        self.version = settings.api_version.strip("/")

    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.settings.access_token}"}

    # ---- reads
    def pages(self, resource: str, params: dict | None, resume: dict | None) -> Iterator[Page]:
        """Every page of a ``Page``/``Limit`` list, following ``next-page`` until it is absent.

        ``next-page`` is a path relative to the API root carrying every filter and the page
        number (not an expiring token), so it is also the resume point after a crash.
        """
        if resume and resume.get("next"):
            path, query = resume["next"], None
        else:
            path, query = f"{self.version}/{resource}", {"Page": 1, "Limit": self.page_size, **(params or {})}
        while True:
            response = self.request("GET", path, params=query)
            body = response.body
            # the dated versions answer lists as a bare array; tolerate an {"items": [...]} envelope
            records = body.get("items") or [] if isinstance(body, dict) else body or []
            following = response.headers.get("next-page")
            # no total is reported: the paging headers beside next-page (total-count...) are not documented
            yield Page(list(records), {"next": following} if following else None)
            if not following:
                return
            path, query = following, None

    def order_pages(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Orders (each with its shipments) last updated at or after ``since``; all on a first run.

        Oldest first: orders created while we page land on the last pages instead of shifting
        the page numbers of the ones still to read.
        """
        params: dict[str, Any] = {"SortOrder": "Oldest"}
        if since is not None:
            params["LastUpdateStartDate"] = _stamp(since)
        return self.pages("order", params, resume)

    def shipment_pages(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """One record per shipment, taken from the order pages: no call per order or shipment.

        An order's last update is at least its shipments' last update, so the orders updated
        since ``since`` carry every shipment updated since then.
        """
        for page in self.order_pages(since, resume):
            shipments: list[dict] = []
            for order in page.records:
                if not isinstance(order, dict):
                    continue
                if not isinstance(order.get("shipments"), list):
                    # its shipments cannot be read: say so in the quarantine rather than drop them
                    shipments.append({DAMAGED_ORDER: True, "order_id": order.get("id"), "order": order})
                    continue
                shipments += [s for s in order["shipments"] if isinstance(s, dict)]
            yield Page(shipments, page.resume)

    def inventory_pages(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Every inventory item with its quantities: quantities move without any change date,
        so the whole list is read each run."""
        return self.pages("inventory", None, resume)

    def receiving_pages(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Every warehouse receiving order: the list filters only by insert or completion date,
        not by last update, and a receiving order changes after it is inserted (arrival, counts),
        so the whole (small) list is read each run."""
        return self.pages("receiving", None, resume)

    # ---- writes (write-back)
    def _channel_header(self) -> dict:
        if self.settings.channel_id is None:
            raise ValueError("SHIPBOB_CHANNEL_ID is not set (see .env.example); ShipBob writes need it")
        return {"shipbob_channel_id": str(self.settings.channel_id)}

    def create_order(self, order: dict) -> dict:
        """Create an order (a reship); its ``reference_id`` makes a retry return the same order.

        ShipBob has no idempotency header, but refuses a second order with the same
        reference_id (422). So a lost answer is retried, and a 422 is answered by looking the
        order up: whether the first attempt or an earlier run created it, we get the one order.
        """
        reference = order.get("reference_id")
        if not reference:
            raise ValueError("shipbob: an order needs a reference_id (it is what makes a retry safe)")
        try:
            return self.request("POST", f"{self.version}/order", json_body=order, headers=self._channel_header(),
                                idempotent=True).body
        except SourceError as exc:
            if exc.status != 422:
                raise
            existing = self.find_order(reference)
            if existing is None:
                raise
            return existing

    def find_order(self, reference_id: str) -> dict | None:
        """The order with this reference_id, or None."""
        body = self.request("GET", f"{self.version}/order", params={"ReferenceIds": reference_id}).body
        records = body.get("items") or [] if isinstance(body, dict) else body or []
        return next((r for r in records if r.get("reference_id") == reference_id), None)

    def create_receiving_order(self, receiving_order: dict) -> dict:
        """Create a warehouse receiving order (an approved PO); its purchase_order_number makes a
        retry return the existing one (a duplicate number is refused with 422: we look it up)."""
        po_number = receiving_order.get("purchase_order_number")
        if not po_number:
            raise ValueError("shipbob: a receiving order needs a purchase_order_number (it is what makes a retry safe)")
        try:
            return self.request("POST", f"{self.version}/receiving", json_body=receiving_order,
                                headers=self._channel_header(), idempotent=True).body
        except SourceError as exc:
            if exc.status != 422:
                raise
            existing = self.find_receiving_order(po_number)
            if existing is None:
                raise
            return existing

    def find_receiving_order(self, po_number: str) -> dict | None:
        """The receiving order with this purchase order number, or None."""
        for page in self.pages("receiving", {"PurchaseOrderNumbers": po_number}, None):
            for record in page.records:
                if record.get("purchase_order_number") == po_number:
                    return record
        return None


def _stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _either(*names: str):
    """The first field present: the dated versions use snake_case, v1.0 camelCase."""
    def read(record: dict):
        for name in names:
            if record.get(name) is not None:
                return record[name]
        return None
    return read


def needs(read, *keys: str):
    """A field reader that first checks the record carries ``keys`` (null allowed): a record that
    lacks a field closeloop relies on is damaged, and is quarantined naming that field."""
    def checked(record: dict):
        for key in keys:
            if key not in record:
                raise FieldError(f"{key}: missing")
        return read(record) if callable(read) else dig(record, read)
    return checked


def order_last_update(order: dict) -> datetime | None:
    """An order's last update: the latest of its own dates and its shipments' update dates.

    The order body carries no update time of its own; its shipments' ``last_update_at`` (and
    tracking, fulfilment and delivery dates) move whenever the 3PL touches it.
    """
    # an order-level last_update_at is used too should a version send one (none is documented)
    stamps = [order.get("created_date"), order.get("last_update_at")]
    for shipment in order.get("shipments") or []:
        if isinstance(shipment, dict):
            stamps += [shipment.get(k) for k in ("created_date", "last_update_at", "last_tracking_update_at",
                                                 "actual_fulfillment_date", "delivery_date")]
    instants = [as_instant(s, "updated_at") for s in stamps if s]
    return max(instants) if instants else None


def _count(name: str):
    return lambda record: len(record[name]) if isinstance(record.get(name), list) else None


def _shipment_id(record: dict):
    if record.get(DAMAGED_ORDER):
        raise FieldError(f"shipments: missing from order {record.get('order_id')} (its shipments cannot be read)")
    return record.get("id")


def _total(record: dict, name: str) -> int | None:
    lines = record.get("inventory_quantities")
    if not isinstance(lines, list):
        return None
    return sum(int(line.get(name) or 0) for line in lines if isinstance(line, dict))


def _flag(*names: str):
    read = _either(*names)
    return lambda record: None if read(record) is None else str(bool(read(record))).lower()


SHAPES = {
    "orders": RecordShape(
        key=Field("id", "id", "int", required=True),
        # an order without its products or shipments list would silently lose them downstream
        updated_at=Field("updated_at", needs(order_last_update, "shipments", "products"), "instant", required=True),
        fields=(
            Field("reference_id", "reference_id", required=True),  # the channel's order id
            Field("order_number", "order_number"),
            Field("status", "status", required=True),
            Field("type", "type"),
            Field("channel_id", "channel.id", "int"),
            Field("created_date", "created_date", "instant", required=True),
            Field("purchase_date", "purchase_date", "instant"),
            Field("total_price", "financials.total_price", "money", non_negative=True),
            Field("shipment_count", _count("shipments"), "int", non_negative=True),
            Field("product_count", _count("products"), "int", non_negative=True),
        )),
    "shipments": RecordShape(
        key=Field("id", _shipment_id, "int", required=True),
        updated_at=Field("last_update_at", "last_update_at", "instant", required=True),
        fields=(
            Field("order_id", "order_id", "int", required=True),
            Field("reference_id", "reference_id", required=True),
            Field("status", "status", required=True),
            Field("tracking_number", "tracking.tracking_number"),
            Field("carrier", "tracking.carrier"),
            Field("carrier_service", "tracking.carrier_service"),
            Field("created_date", "created_date", "instant"),
            Field("actual_fulfillment_date", "actual_fulfillment_date", "instant"),
            Field("estimated_fulfillment_date", "estimated_fulfillment_date", "instant"),
            Field("delivery_date", "delivery_date", "instant"),
            Field("last_tracking_update_at", "last_tracking_update_at", "instant"),
            Field("fulfillment_center_id", "location.id", "int"),
            Field("invoice_amount", "invoice_amount", "money", non_negative=True),
            Field("invoice_currency_code", "invoice_currency_code", currency=True),
        )),
    "inventory": RecordShape(
        key=Field("id", _either("id", "inventoryId"), "int", required=True),
        updated_at=None,  # ShipBob gives no change time for quantities: full refresh
        fields=(
            Field("sku", "sku"),
            Field("name", "name"),
            Field("is_active", _flag("is_active", "isActive")),
            # the 2026 names; v1.0 spelled them in camelCase (and "Commited")
            Field("total_fulfillable_quantity", _either("total_fulfillable_quantity", "totalFulfillableQuantity"),
                  "int", required=True, non_negative=True),
            Field("total_onhand_quantity", _either("total_onhand_quantity", "total_on_hand_quantity", "totalOnHandQuantity"),
                  "int", required=True, non_negative=True),
            Field("total_committed_quantity", _either("total_committed_quantity", "totalCommittedQuantity",
                                                      "totalCommitedQuantity"), "int", required=True, non_negative=True),
            Field("total_awaiting_quantity", _either("total_awaiting_quantity", "totalAwaitingQuantity"),
                  "int", required=True, non_negative=True),
            Field("total_sellable_quantity", _either("total_sellable_quantity", "totalSellableQuantity"), "int",
                  non_negative=True),
            Field("total_backordered_quantity", _either("total_backordered_quantity", "totalBackorderedQuantity"), "int",
                  non_negative=True),
            Field("total_exception_quantity", _either("total_exception_quantity", "totalExceptionQuantity"), "int",
                  non_negative=True),
        )),
    "receiving_orders": RecordShape(
        key=Field("id", "id", "int", required=True),
        # the per-SKU expected/received/stowed quantities stay in the payload (inventory_quantities)
        updated_at=Field("last_updated_date", needs("last_updated_date", "inventory_quantities"), "instant",
                         required=True),
        fields=(
            Field("purchase_order_number", "purchase_order_number"),
            Field("status", "status", required=True),
            Field("expected_arrival_date", "expected_arrival_date", "instant"),
            Field("insert_date", "insert_date", "instant"),
            Field("fulfillment_center_id", "fulfillment_center.id", "int"),
            Field("line_count", _count("inventory_quantities"), "int", non_negative=True),
            Field("expected_quantity", lambda r: _total(r, "expected_quantity"), "int", non_negative=True),
            Field("received_quantity", lambda r: _total(r, "received_quantity"), "int", non_negative=True),
        )),
}


def streams(client: ShipBobClient) -> list[Stream]:
    """Orders and shipments incremental by last update; inventory and receiving orders read whole."""
    return [
        Stream("shipbob", "orders", SHAPES["orders"], client.order_pages, description="ShipBob orders with their shipments"),
        Stream("shipbob", "shipments", SHAPES["shipments"], client.shipment_pages,
               description="ShipBob shipments, one row each, from the order pages"),
        Stream("shipbob", "inventory", SHAPES["inventory"], client.inventory_pages,
               description="ShipBob inventory items and their quantities (full refresh)"),
        Stream("shipbob", "receiving_orders", SHAPES["receiving_orders"], client.receiving_pages,
               description="ShipBob warehouse receiving orders (full refresh)"),
    ]
