"""Amazon orders as the Orders API 2026-01-01 shows them, rendered from the world as of an instant.

An Amazon order exists from its ``created_at``. Its fulfillment status is UNSHIPPED from then
(the world's ``created_at`` is "placed and paid", so it is ready to ship), SHIPPED from
``amazon_shipped_at`` and CANCELLED from ``cancelled_at``. Its ``lastUpdatedTime`` is the latest
of those events, its refunds and its lines' ``added_at`` at or before the instant (the model has
no place for a refund's money, which reaches the seller through the settlement report, but a
refund still counts as an update of the order). Amazon
timestamps have whole seconds, so every event time is truncated to the second; the view instant
is a whole second too, which keeps the ``lastUpdatedBefore`` the API reports exactly the bound
it applied.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta

import polars as pl

from ..world import AMAZON_MARKETPLACE_ID, AMAZON_MARKETPLACE_NAME, World

# "Updates become visible about 2 minutes after the change" (SP-API orders docs); the
# createdBefore / lastUpdatedBefore bounds must also be at least two minutes before the request.
VISIBILITY_DELAY = timedelta(minutes=2)

FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE",
)
FULFILLED_BY = ("MERCHANT", "AMAZON")
INCLUDED_DATA = (
    "BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES", "TAX",
    "PAYMENT", "FULFILLMENT_ORDERS",
)

# world cancel_reason -> who executed the cancellation on Amazon
_CANCELLED_BY = {"customer": "BUYER", "fraud": "AMAZON", "declined": "AMAZON", "inventory": "MERCHANT"}


def amazon_instant(instant: datetime) -> str:
    """ISO 8601 in UTC with a Z, whole seconds, as SP-API writes times."""
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_second(instant: datetime) -> datetime:
    """``instant`` truncated to the second (SP-API times carry whole seconds)."""
    return instant.replace(microsecond=0)


def money(cents: int, currency: str) -> dict:
    """The model's Money: ``amount`` is a Decimal, which the model types as a string."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return {"amount": f"{sign}{whole}.{part:02d}", "currencyCode": currency}


def view_instant(now: datetime) -> datetime:
    """The instant the Orders API shows: the clock minus the visibility delay, whole seconds."""
    return whole_second(now - VISIBILITY_DELAY)


class AmazonOrderBook:
    """The world's Amazon orders, indexed once, rendered as of any view instant."""

    def __init__(self, world: World):
        self.world = world
        self._lock = threading.Lock()
        self._loaded = False
        self._views: OrderedDict[datetime, pl.DataFrame] = OrderedDict()

    # ------------------------------------------------------------------ static indices
    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            truncate = lambda col: pl.col(col).dt.truncate("1s")  # noqa: E731
            orders = (
                self.world.table("orders")
                .filter(pl.col("channel") == "amazon")
                .with_columns(
                    truncate("created_at"),
                    truncate("cancelled_at"),
                    truncate("amazon_shipped_at"),
                    truncate("latest_ship_at"),
                )
            )
            keys = orders.select("order_key")
            lines = (
                self.world.table("order_lines")
                .join(keys, on="order_key", how="semi")
                .with_columns(truncate("added_at"))
                .join(self.world.table("variants").select("variant_id", "asin"), on="variant_id", how="left")
                .sort("order_key", "line_index")
            )
            refunds = (
                self.world.table("refunds")
                .join(keys, on="order_key", how="semi")
                .select("order_key", pl.col("created_at").dt.truncate("1s").alias("refunded_at"))
            )
            shipments = (
                self.world.table("shipments")
                .join(keys, on="order_key", how="semi")
                .with_columns(truncate("created_at"), truncate("shipped_at"))
                .sort("order_key", "shipment_id")
            )
            shipment_lines = self.world.table("shipment_lines").join(
                shipments.select("shipment_id"), on="shipment_id", how="semi"
            )
            # frames only: a page looks its orders up in them, so a large world never turns
            # every order into Python objects
            self.orders = orders
            self.lines = lines
            self.refunds = refunds
            self.shipments = shipments
            self.shipment_lines = shipment_lines
            self._loaded = True

    # ------------------------------------------------------------------ state as of a view
    def states(self, view: datetime) -> pl.DataFrame:
        """One row per order that exists at ``view``: order_key, order_id, created, last_updated,
        status, fulfilled_by. Memoised for the last few view instants."""
        self._load()
        with self._lock:
            hit = self._views.get(view)
            if hit is not None:
                self._views.move_to_end(view)
                return hit
        frame = self._build_states(view)
        with self._lock:
            self._views[view] = frame
            while len(self._views) > 8:
                self._views.popitem(last=False)
        return frame

    def _build_states(self, view: datetime) -> pl.DataFrame:
        at = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
        happened = lambda col: pl.when(pl.col(col) <= at).then(pl.col(col))  # noqa: E731
        refunded = (
            self.refunds.filter(pl.col("refunded_at") <= at)
            .group_by("order_key")
            .agg(pl.col("refunded_at").max().alias("last_refund"))
        )
        added = (
            self.lines.filter(pl.col("added_at") <= at)
            .group_by("order_key")
            .agg(pl.col("added_at").max().alias("last_line"))
        )
        return (
            self.orders.filter(pl.col("created_at") <= at)
            .select(
                "order_key",
                pl.col("channel_order_id").alias("order_id"),
                pl.col("created_at").alias("created"),
                happened("amazon_shipped_at").alias("shipped"),
                happened("cancelled_at").alias("cancelled"),
                pl.when(pl.col("fulfillment_channel") == "AFN")
                .then(pl.lit("AMAZON"))
                .otherwise(pl.lit("MERCHANT"))
                .alias("fulfilled_by"),
            )
            .join(refunded, on="order_key", how="left")
            .join(added, on="order_key", how="left")
            .with_columns(
                pl.max_horizontal("created", "shipped", "cancelled", "last_refund", "last_line").alias("last_updated"),
                pl.when(pl.col("cancelled").is_not_null())
                .then(pl.lit("CANCELLED"))
                .when(pl.col("shipped").is_not_null())
                .then(pl.lit("SHIPPED"))
                .otherwise(pl.lit("UNSHIPPED"))
                .alias("status"),
            )
            .select("order_key", "order_id", "created", "last_updated", "status", "fulfilled_by", "shipped", "cancelled")
        )

    def state(self, order_id: str, view: datetime) -> dict | None:
        """The :meth:`states` row of one order, or None when it does not exist at ``view``."""
        found = self.states(view).filter(pl.col("order_id") == order_id).head(1).to_dicts()
        return found[0] if found else None

    # ------------------------------------------------------------------ rendering
    def render_page(self, states: list[dict], included: set[str], view: datetime) -> list[dict]:
        """Order objects of the model for rows of :meth:`states` taken at ``view``, in order."""
        self._load()
        keys = [s["order_key"] for s in states]
        at = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
        rows = {r["order_key"]: r for r in self.orders.filter(pl.col("order_key").is_in(keys)).iter_rows(named=True)}
        lines: dict[int, list[dict]] = {}
        page_lines = self.lines.filter(pl.col("order_key").is_in(keys) & (pl.col("added_at") <= at))
        for line in page_lines.iter_rows(named=True):
            lines.setdefault(line["order_key"], []).append(line)
        packages: dict[int, list[dict]] = {}
        if "PACKAGES" in included:
            packages = self._packages(keys, view)
        return [self._render(s, rows[s["order_key"]], lines.get(s["order_key"], []), packages, included) for s in states]

    def _packages(self, keys: list[int], view: datetime) -> dict[int, list[tuple[dict, list[dict]]]]:
        at = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
        shipments = self.shipments.filter(pl.col("order_key").is_in(keys) & (pl.col("shipped_at") <= at))
        contents: dict[int, list[dict]] = {}
        for row in self.shipment_lines.filter(pl.col("shipment_id").is_in(shipments["shipment_id"].to_list())).iter_rows(named=True):
            contents.setdefault(row["shipment_id"], []).append(row)
        out: dict[int, list[tuple[dict, list[dict]]]] = {}
        for shipment in shipments.iter_rows(named=True):
            out.setdefault(shipment["order_key"], []).append((shipment, contents.get(shipment["shipment_id"], [])))
        return out

    def _render(self, state: dict, row: dict, view_lines: list[dict], packages: dict, included: set[str]) -> dict:
        currency = row["currency"] or "USD"
        status = state["status"]
        order: dict = {
            "orderId": row["channel_order_id"],
            "createdTime": amazon_instant(state["created"]),
            "lastUpdatedTime": amazon_instant(state["last_updated"]),
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": AMAZON_MARKETPLACE_ID,
                "marketplaceName": AMAZON_MARKETPLACE_NAME,
            },
        }
        if "BUYER" in included and row.get("email"):
            order["buyer"] = {"buyerEmail": row["email"]}
        if "RECIPIENT" in included:
            address = {
                "city": row.get("ship_to_city"),
                "stateOrRegion": row.get("ship_to_state"),
                "postalCode": row.get("ship_to_zip"),
                "countryCode": row.get("ship_to_country"),
                "addressType": "RESIDENTIAL",
            }
            order["recipient"] = {"deliveryAddress": {k: v for k, v in address.items() if v}}
        if "PROCEEDS" in included:
            item_cents = sum(ln["quantity"] * ln["unit_price_cents"] for ln in view_lines)
            breakdowns = [
                {"type": "ITEM", "subtotal": money(item_cents, currency)},
                {"type": "SHIPPING", "subtotal": money(row["shipping_cents"] or 0, currency)},
                {"type": "TAX", "subtotal": money(row["total_tax_cents"] or 0, currency)},
            ]
            if row["total_discounts_cents"]:
                breakdowns.append({"type": "DISCOUNT", "subtotal": money(-row["total_discounts_cents"], currency)})
            order["proceeds"] = {"grandTotal": money(row["total_cents"], currency), "breakdowns": breakdowns}
        if "FULFILLMENT" in included:
            fulfillment = {
                "fulfillmentStatus": status,
                "fulfilledBy": state["fulfilled_by"],
                "fulfillmentServiceLevel": "STANDARD",
            }
            if row.get("latest_ship_at") is not None:
                fulfillment["shipByWindow"] = {
                    "earliestDateTime": amazon_instant(state["created"]),
                    "latestDateTime": amazon_instant(row["latest_ship_at"]),
                }
            order["fulfillment"] = fulfillment
        order["orderItems"] = [self._render_item(ln, row, state, currency, included) for ln in view_lines]
        # the model: packages are "only available for merchant-fulfilled (FBM) orders", and they
        # appear once the order shows as shipped
        if "PACKAGES" in included and state["fulfilled_by"] == "MERCHANT" and state["status"] == "SHIPPED":
            rendered = self._render_packages(packages.get(row["order_key"], []), view_lines)
            if rendered:
                order["packages"] = rendered
        return order

    def _render_item(self, line: dict, row: dict, state: dict, currency: str, included: set[str]) -> dict:
        product = {"sellerSku": line["sku"], "title": line["title"], "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"}}
        if line.get("asin"):
            product["asin"] = line["asin"]
        product["price"] = {"unitPrice": money(line["unit_price_cents"], currency)}
        item: dict = {
            "orderItemId": line["amazon_order_item_id"] or str(line["line_id"]),
            "quantityOrdered": int(line["quantity"]),
            "product": {k: product[k] for k in ("asin", "title", "sellerSku", "condition", "price") if k in product},
        }
        if "PROCEEDS" in included:
            gross = line["quantity"] * line["unit_price_cents"]
            discount = line["discount_cents"] or 0
            tax = line["tax_cents"] or 0
            breakdowns = [{"type": "ITEM", "subtotal": money(gross, currency)}]
            if tax:
                breakdowns.append({
                    "type": "TAX",
                    "subtotal": money(tax, currency),
                    "detailedBreakdowns": [{"subtype": "ITEM", "value": money(tax, currency)}],
                })
            if discount:
                breakdowns.append({
                    "type": "DISCOUNT",
                    "subtotal": money(-discount, currency),
                    "detailedBreakdowns": [{"subtype": "ITEM", "value": money(-discount, currency)}],
                })
            item["proceeds"] = {"proceedsTotal": money(gross - discount + tax, currency), "breakdowns": breakdowns}
        if "PROMOTION" in included and row.get("promo_id"):
            item["promotion"] = {"breakdowns": [{"promotionId": row["promo_id"]}]}
        if "CANCELLATION" in included and state["status"] == "CANCELLED":
            reason = row.get("cancel_reason") or "other"
            cancelled_by = _CANCELLED_BY.get(reason, "MERCHANT")
            cancellation = {"cancellationExecution": {"cancelledBy": cancelled_by, "cancelReason": reason}}
            if cancelled_by == "BUYER":
                cancellation["cancellationRequest"] = {"requester": "BUYER", "cancelReason": reason}
            item["cancellation"] = cancellation
        if "FULFILLMENT" in included:
            shipped = int(line["quantity"]) if state["status"] == "SHIPPED" else 0
            unfulfilled = 0 if state["status"] == "CANCELLED" else int(line["quantity"]) - shipped
            item["fulfillment"] = {"quantityFulfilled": shipped, "quantityUnfulfilled": unfulfilled}
        return item

    def _render_packages(self, shipments: list[tuple[dict, list[dict]]], lines: list[dict]) -> list[dict]:
        item_by_sku = {ln["sku"]: (ln["amazon_order_item_id"] or str(ln["line_id"])) for ln in lines}
        packages = []
        for shipment, contents in shipments:
            items = [
                {"orderItemId": item_by_sku[sl["sku"]], "quantity": int(sl["quantity"])}
                for sl in contents
                if sl["sku"] in item_by_sku
            ]
            package = {
                "packageReferenceId": str(shipment["shipment_id"]),
                "createdTime": amazon_instant(shipment["created_at"] or shipment["shipped_at"]),
                "packageStatus": {"status": "SHIPPED"},
                "carrier": shipment.get("carrier"),
                "shipTime": amazon_instant(shipment["shipped_at"]),
                "shippingService": shipment.get("carrier_service"),
                "trackingNumber": shipment.get("tracking_number"),
                "packageItems": items,
            }
            packages.append({k: v for k, v in package.items() if v is not None})
        return packages
