"""Shopify GraphQL objects rendered from world rows, as plain dicts graphql-core can resolve.

Scalars are stored under their field names. Fields that take arguments or would be costly to
build for every record (child connections, back references) are stored as callables
``f(info, **args)``, which graphql-core's default resolver calls only when the query asks.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

import polars as pl
from babel import Locale

from ..world import SHOP_CURRENCY
from . import shopify_views as views

LOCATION_ID = 70000000001
LOCATION_NAME = "ShipBob Fulfillment Network"
KNOWN_CURRENCIES = {
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
    "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KRW", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN",
    "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VND",
    "ZAR",
}
KNOWN_COUNTRIES = set(
    "AE AR AT AU BE BG BR CA CH CL CN CO CY CZ DE DK EE EG ES FI FR GB GR HK HR HU ID IE IL IN IS IT JP KR LT "
    "LU LV MT MX MY NG NL NO NZ PE PH PK PL PR PT RO RS SA SE SG SI SK TH TR TW UA US VN ZA".split()
)
COUNTRY_NAMES = Locale("en").territories
TRACKING_URLS = {
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FEDEX": "https://www.fedex.com/fedextrack/?trknbr={}",
    "DHL": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}


# ---------------------------------------------------------------- formats


def gid(kind: str, number) -> str:
    """A Shopify global id: gid://shopify/{kind}/{number}."""
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: str) -> tuple[str, int] | None:
    """('Order', 123) from 'gid://shopify/Order/123' (query strings such as '?inventory_item_id=' ignored)."""
    if not isinstance(value, str) or not value.startswith("gid://shopify/"):
        return None
    parts = value[len("gid://shopify/"):].split("?")[0].split("/")
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def iso(value: datetime | None) -> str | None:
    """Shopify DateTime: ISO-8601 in UTC with a Z, whole seconds."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal(cents: int | None) -> str:
    """Minor units as Shopify's decimal string, two places ("12.30", "-4.05")."""
    cents = int(cents or 0)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def currency(code: str | None) -> str:
    """A currency code the schema's CurrencyCode enum holds (XXX when it does not)."""
    return code if code in KNOWN_CURRENCIES else "XXX"


def money(cents: int | None, code: str = SHOP_CURRENCY) -> dict:
    """MoneyV2: a decimal string amount and its currency."""
    return {"amount": decimal(cents), "currencyCode": currency(code)}


@dataclass(frozen=True)
class Currencies:
    """An order's shop and presentment currencies and the rate between them."""

    shop: str
    presentment: str
    fx_rate: float

    def bag(self, cents: int | None, presentment_cents: int | None = None) -> dict:
        """MoneyBag: the amount in shop money and in the buyer's presentment money."""
        if presentment_cents is None:
            presentment_cents = round((cents or 0) * (self.fx_rate or 1.0))
        return {"shopMoney": money(cents, self.shop), "presentmentMoney": money(presentment_cents, self.presentment)}


def is_bulk(info) -> bool:
    """Whether this resolution belongs to a bulk run (child connections then return every record)."""
    return getattr(info.context, "bulk", None) is not None


# ---------------------------------------------------------------- catalog


class Catalog:
    """Products, variants, inventory items and the location as of one instant."""

    def __init__(self, ctx, now: datetime):
        self.ctx = ctx
        self.now = now

    @cached_property
    def products(self) -> dict[int, dict]:
        return {r["product_id"]: r for r in views.shopify_products(self.ctx, self.now).iter_rows(named=True)}

    @cached_property
    def variants(self) -> dict[int, dict]:
        return {r["variant_id"]: r for r in views.shopify_variants(self.ctx, self.now).iter_rows(named=True)}

    @cached_property
    def variants_by_product(self) -> dict[int, list[dict]]:
        grouped: dict[int, list[dict]] = defaultdict(list)
        for row in self.variants.values():
            grouped[row["product_id"]].append(row)
        return grouped

    @cached_property
    def variants_by_item(self) -> dict[int, dict]:
        return {r["inventory_item_id"]: r for r in self.variants.values()}

    @cached_property
    def stock(self) -> dict[str, views.StockLevel]:
        return views.inventory_levels(self.ctx, self.now)

    # ---- nodes
    def product(self, product_id: int) -> dict | None:
        row = self.products.get(product_id)
        if row is None:
            return None
        variants = self.variants_by_product.get(product_id, [])
        return {
            "__typename": "Product",
            "id": gid("Product", product_id),
            "legacyResourceId": str(product_id),
            "title": row["title"],
            "handle": row["handle"],
            "productType": row["product_type"] or "",
            "vendor": row["vendor"] or "",
            "tags": [t.strip() for t in (row["tags"] or "").split(",") if t.strip()],
            "status": row["status"],
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["updated_at"]),
            "publishedAt": iso(row["published_at"]),
            "totalInventory": sum(self._available(v["sku"]) for v in variants),
            "variantsCount": {"count": len(variants)},
            "variants": lambda info, **args: views.paginate_list(
                [self.variant(v["variant_id"]) for v in variants], args, unlimited=is_bulk(info)
            ),
        }

    def _available(self, sku: str) -> int:
        level = self.stock.get(sku)
        return level.available if level else 0

    def variant(self, variant_id: int) -> dict | None:
        row = self.variants.get(variant_id)
        if row is None:
            return None
        product = self.products.get(row["product_id"])
        title = row["title"] or "Default Title"
        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", variant_id),
            "legacyResourceId": str(variant_id),
            "sku": row["sku"],
            "title": title,
            "displayName": f"{product['title']} - {title}" if product else title,
            "barcode": row["barcode"],
            "price": decimal(row["price_cents"]),
            "position": row["position"],
            "inventoryQuantity": self._available(row["sku"]),
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["updated_at"]),
            "product": lambda info, **args: self.product(row["product_id"]),
            "inventoryItem": lambda info, **args: self.inventory_item(row["inventory_item_id"]),
        }

    def inventory_item(self, item_id: int) -> dict | None:
        row = self.variants_by_item.get(item_id)
        if row is None:
            return None
        tracked = not row["is_bundle"]
        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", item_id),
            "legacyResourceId": str(item_id),
            "sku": row["sku"],
            "tracked": tracked,
            "requiresShipping": True,
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["updated_at"]),
            "unitCost": money(row["unit_cost_cents"]),
            "variant": lambda info, **args: self.variant(row["variant_id"]),
            "inventoryLevel": lambda info, locationId: (
                self.inventory_level(row) if (parse_gid(locationId) or ("", 0))[1] == LOCATION_ID else None
            ),
            "inventoryLevels": lambda info, **args: views.paginate_list(
                [lvl for lvl in [self.inventory_level(row)] if lvl is not None], args, unlimited=is_bulk(info)
            ),
        }

    def inventory_level(self, variant_row: dict) -> dict | None:
        level = self.stock.get(variant_row["sku"])
        if level is None:
            return None
        item_id = variant_row["inventory_item_id"]
        values = {
            "available": level.available,
            "on_hand": level.on_hand,
            "committed": level.committed,
            "incoming": level.incoming,
            "reserved": 0,
            "damaged": 0,
            "safety_stock": 0,
            "quality_control": 0,
        }
        level_id = f"{gid('InventoryLevel', LOCATION_ID)}?inventory_item_id={item_id}"

        def quantities(info, names):
            return [
                {
                    "__typename": "InventoryQuantity",
                    "id": f"{gid('InventoryQuantity', LOCATION_ID)}?inventory_item_id={item_id}&name={name}",
                    "name": name,
                    "quantity": values[name],
                    "updatedAt": iso(level.as_of),
                }
                for name in names
                if name in values
            ]

        return {
            "__typename": "InventoryLevel",
            "id": level_id,
            "createdAt": iso(variant_row["created_at"]),
            "updatedAt": iso(level.as_of),
            "canDeactivate": False,
            "item": lambda info, **args: self.inventory_item(item_id),
            "location": lambda info, **args: self.location(),
            "quantities": quantities,
        }

    def location(self) -> dict:
        start = self.ctx.world.meta.start
        return {
            "__typename": "Location",
            "id": gid("Location", LOCATION_ID),
            "legacyResourceId": str(LOCATION_ID),
            "name": LOCATION_NAME,
            "isActive": True,
            "fulfillsOnlineOrders": True,
            "createdAt": iso(start),
            "updatedAt": iso(start),
        }


# ---------------------------------------------------------------- orders


@dataclass
class Annotation:
    """What clients wrote on an order: tags and note, and when."""

    tags: list[str]
    note: str | None
    at: datetime


def _group(frame: pl.DataFrame, key: str) -> dict:
    grouped: dict = defaultdict(list)
    for row in frame.iter_rows(named=True):
        grouped[row[key]].append(row)
    return grouped


class OrderBatch:
    """The children of a set of orders (one page), fetched together on first use."""

    def __init__(self, ctx, now: datetime, catalog: Catalog, order_keys: list[int]):
        self.ctx = ctx
        self.now = now
        self.catalog = catalog
        self.keys = list(order_keys)

    def _rows(self, table: str, at: str | None) -> pl.DataFrame:
        frame = self.ctx.world.table(table).filter(pl.col("order_key").is_in(self.keys))
        if at:
            frame = frame.filter(pl.col(at).is_not_null() & (pl.col(at) <= self.now))
        return frame

    @cached_property
    def lines(self) -> dict[int, list[dict]]:
        return _group(self._rows("order_lines", "added_at").sort("order_key", "line_index"), "order_key")

    @cached_property
    def transactions(self) -> dict[int, list[dict]]:
        return _group(self._rows("order_transactions", "processed_at").sort("processed_at", "transaction_id"), "order_key")

    @cached_property
    def refunds(self) -> dict[int, list[dict]]:
        return _group(self._rows("refunds", "created_at").sort("created_at", "refund_id"), "order_key")

    @cached_property
    def refund_lines(self) -> dict[int, list[dict]]:
        ids = [r["refund_id"] for rows in self.refunds.values() for r in rows]
        frame = self.ctx.world.table("refund_lines").filter(pl.col("refund_id").is_in(ids))
        return _group(frame.sort("refund_line_id"), "refund_id")

    @cached_property
    def shipments(self) -> dict[int, list[dict]]:
        frame = views.fulfilled_shipments(self.ctx, self.now).filter(pl.col("order_key").is_in(self.keys))
        return _group(frame.sort("shipped_at", "shipment_id"), "order_key")

    @cached_property
    def shipment_lines(self) -> dict[int, list[dict]]:
        ids = [s["shipment_id"] for rows in self.shipments.values() for s in rows]
        return _group(self.ctx.world.table("shipment_lines").filter(pl.col("shipment_id").is_in(ids)), "shipment_id")

    @cached_property
    def delivered(self) -> dict[str, datetime]:
        return views.delivered_at(self.ctx, self.now)

    @cached_property
    def bundles(self) -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for row in self.ctx.world.table("bundle_components").iter_rows(named=True):
            out[row["bundle_sku"]].append((row["component_sku"], row["quantity"]))
        return out

    # ---- fulfilment allocation
    def allocate(self, order_key: int) -> dict[int, list[tuple[int, int]]]:
        """shipment id -> [(line id, quantity)]: shipped SKUs matched to order lines by SKU.

        A bundle line is fulfilled through its components: it counts as shipped as many times
        as every component has shipped its per-bundle quantity.
        """
        lines = self.lines.get(order_key, [])
        done: dict[int, int] = defaultdict(int)
        out: dict[int, list[tuple[int, int]]] = {}
        for shipment in self.shipments.get(order_key, []):
            left: dict[str, int] = defaultdict(int)
            for sl in self.shipment_lines.get(shipment["shipment_id"], []):
                left[sl["sku"]] += sl["quantity"]
            taken: list[tuple[int, int]] = []
            for line in lines:
                if line["sku"] in self.bundles:
                    continue
                qty = min(line["quantity"] - done[line["line_id"]], left[line["sku"]])
                if qty > 0:
                    left[line["sku"]] -= qty
                    done[line["line_id"]] += qty
                    taken.append((line["line_id"], qty))
            for line in lines:
                parts = self.bundles.get(line["sku"])
                if not parts:
                    continue
                possible = min(left[sku] // max(q, 1) for sku, q in parts)
                qty = min(line["quantity"] - done[line["line_id"]], possible)
                if qty > 0:
                    for sku, q in parts:
                        left[sku] -= qty * q
                    done[line["line_id"]] += qty
                    taken.append((line["line_id"], qty))
            out[shipment["shipment_id"]] = taken
        return out


class OrderRenderer:
    """Builds Order dicts (and their lines, fulfillments, refunds, transactions) for one page."""

    def __init__(self, ctx, now: datetime, catalog: Catalog, annotations: dict[int, Annotation]):
        self.ctx = ctx
        self.now = now
        self.catalog = catalog
        self.annotations = annotations

    def render(self, rows: list[dict]) -> list[dict]:
        """Order dicts for view rows, children fetched once for the whole page."""
        batch = OrderBatch(self.ctx, self.now, self.catalog, [r["order_key"] for r in rows])
        return [self.order(row, batch) for row in rows]

    def order(self, row: dict, batch: OrderBatch) -> dict:
        """One Order dict: scalars now, children and back references on demand."""
        key = row["order_key"]
        order_id = row["order_id"]
        money_of = Currencies(row["currency"], row["presentment_currency"], row["fx_rate"])
        annotation = self.annotations.get(order_id)
        if annotation is not None and annotation.at > self.now:
            annotation = None
        edited = row["edit_subtotal_cents"] or row["edit_tax_cents"]
        total = row["order_total_cents"]
        refunded = row["refunded_cents"]
        received = row["paid_cents"] - row["refund_tx_cents"]
        cancelled = row["cancelled_at"] is not None
        node: dict = {}
        state = _OrderState(self, batch, row, money_of, node)
        node.update(
            {
                "__typename": "Order",
                "id": gid("Order", order_id),
                "legacyResourceId": str(order_id),
                "name": row["order_name"],
                "email": row["email"],
                "createdAt": iso(row["created_at"]),
                "updatedAt": iso(max(row["updated_at"], annotation.at) if annotation else row["updated_at"]),
                "processedAt": iso(row["processed_at"]),
                "closed": row["closed_at"] is not None,
                "closedAt": iso(row["closed_at"]),
                "cancelledAt": iso(row["cancelled_at"]),
                "cancelReason": (row["cancel_reason"] or "other").upper() if cancelled else None,
                "confirmed": True,
                "test": False,
                "fullyPaid": row["paid_cents"] >= total,
                "unpaid": row["paid_cents"] == 0,
                "displayFinancialStatus": row["financial_status"],
                "displayFulfillmentStatus": row["fulfillment_status"],
                "currencyCode": currency(row["currency"]),
                "presentmentCurrencyCode": currency(row["presentment_currency"]),
                "sourceName": "web",
                "note": annotation.note if annotation else None,
                "tags": sorted(annotation.tags) if annotation else [],
                "discountCode": row["discount_code"],
                "discountCodes": [row["discount_code"]] if row["discount_code"] else [],
                "subtotalLineItemsQuantity": row["line_quantity"],
                "currentSubtotalLineItemsQuantity": 0 if cancelled else max(0, row["line_quantity"] - row["refunded_quantity"]),
                "totalPriceSet": money_of.bag(total, None if edited else row["presentment_total_cents"]),
                "originalTotalPriceSet": money_of.bag(row["total_cents"], row["presentment_total_cents"]),
                "subtotalPriceSet": money_of.bag(row["order_subtotal_cents"]),
                "totalTaxSet": money_of.bag(row["order_tax_cents"]),
                "totalDiscountsSet": money_of.bag(row["total_discounts_cents"]),
                "totalShippingPriceSet": money_of.bag(row["shipping_cents"]),
                "currentTotalPriceSet": money_of.bag(max(0, total - refunded)),
                "currentSubtotalPriceSet": money_of.bag(
                    max(0, row["order_subtotal_cents"] - (refunded - row["refunded_tax_cents"] - row["refunded_shipping_cents"]))
                ),
                "currentTotalTaxSet": money_of.bag(max(0, row["order_tax_cents"] - row["refunded_tax_cents"])),
                "currentTotalDiscountsSet": money_of.bag(row["total_discounts_cents"]),
                "totalRefundedSet": money_of.bag(refunded),
                "totalReceivedSet": money_of.bag(received),
                "netPaymentSet": money_of.bag(received),
                "totalOutstandingSet": money_of.bag(0 if cancelled else max(0, total - row["paid_cents"])),
                "shippingAddress": self.address(row),
                "customer": (
                    {
                        "__typename": "Customer",
                        "id": gid("Customer", row["customer_id"]),
                        "legacyResourceId": str(row["customer_id"]),
                        "email": row["email"],
                    }
                    if row["customer_id"] is not None
                    else None
                ),
                "lineItems": lambda info, **args: views.paginate_list(state.line_nodes(), args, unlimited=is_bulk(info)),
                "fulfillments": lambda info, first=None: _head(state.fulfillment_nodes(), first),
                "refunds": lambda info, first=None: _head(state.refund_nodes(), first),
                "transactions": lambda info, first=None, **flags: _head(state.transaction_nodes(), first),
            }
        )
        return node

    @staticmethod
    def address(row: dict) -> dict:
        country = row["ship_to_country"]
        return {
            "__typename": "MailingAddress",
            "id": gid("MailingAddress", row["order_id"]) + "?model_name=Address",
            "address1": None,
            "address2": None,
            "city": row["ship_to_city"],
            "province": None,
            "provinceCode": row["ship_to_state"],
            "zip": row["ship_to_zip"],
            "country": COUNTRY_NAMES.get(country or "", country),
            "countryCodeV2": country if country in KNOWN_COUNTRIES else None,
            "name": None,
        }


def _head(items: list, first: int | None) -> list:
    return items if first is None else items[: max(0, first)]


class _OrderState:
    """One order's children, rendered on demand and shared between the fields that need them."""

    def __init__(self, renderer: OrderRenderer, batch: OrderBatch, row: dict, money_of: Currencies, node: dict):
        self.renderer = renderer
        self.batch = batch
        self.row = row
        self.key = row["order_key"]
        self.money_of = money_of
        self.node = node

    @cached_property
    def refunded_by_line(self) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for refund in self.batch.refunds.get(self.key, []):
            for rl in self.batch.refund_lines.get(refund["refund_id"], []):
                out[rl["line_id"]] += rl["quantity"]
        return out

    @cached_property
    def allocation(self) -> dict[int, list[tuple[int, int]]]:
        return self.batch.allocate(self.key)

    @cached_property
    def fulfilled_by_line(self) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for taken in self.allocation.values():
            for line_id, qty in taken:
                out[line_id] += qty
        return out

    @cached_property
    def lines_by_id(self) -> dict[int, dict]:
        return {n["_line_id"]: n for n in self.line_nodes()}

    def line_nodes(self) -> list[dict]:
        if "_lines" not in self.__dict__:
            self.__dict__["_lines"] = [self.line(r) for r in self.batch.lines.get(self.key, [])]
        return self.__dict__["_lines"]

    def line(self, row: dict) -> dict:
        m = self.money_of
        qty = row["quantity"]
        gross = qty * row["unit_price_cents"]
        net = gross - row["discount_cents"]
        cancelled = self.row["cancelled_at"] is not None
        current = 0 if cancelled else max(0, qty - self.refunded_by_line.get(row["line_id"], 0))
        fulfilled = self.fulfilled_by_line.get(row["line_id"], 0)
        catalog = self.renderer.catalog
        variant_id = row["variant_id"]
        product_id = row["product_id"]
        variant_row = catalog.variants.get(variant_id)
        tax_lines = []
        if row["tax_cents"]:
            rate = round(row["tax_cents"] / net, 4) if net else 0.0
            tax_lines.append(
                {"title": "Sales Tax", "rate": rate, "ratePercentage": round(rate * 100, 2), "priceSet": m.bag(row["tax_cents"])}
            )
        return {
            "__typename": "LineItem",
            "_line_id": row["line_id"],
            "id": gid("LineItem", row["line_id"]),
            "name": row["title"],
            "title": row["title"].split(" - ")[0] if row["title"] else "",
            "variantTitle": variant_row["title"] if variant_row else None,
            "vendor": (catalog.products.get(product_id) or {}).get("vendor"),
            "sku": row["sku"],
            "quantity": qty,
            "currentQuantity": current,
            "unfulfilledQuantity": max(0, current - fulfilled),
            "refundableQuantity": current,
            "requiresShipping": True,
            "taxable": True,
            "variant": lambda info, **args: catalog.variant(variant_id),
            "product": lambda info, **args: catalog.product(product_id),
            "originalUnitPriceSet": m.bag(row["unit_price_cents"]),
            "discountedUnitPriceSet": m.bag(round(net / qty) if qty else 0),
            "originalTotalSet": m.bag(gross),
            "discountedTotalSet": m.bag(net),
            "totalDiscountSet": m.bag(row["discount_cents"]),
            "taxLines": lambda info, first=None: _head(tax_lines, first),
        }

    @cached_property
    def transactions_by_id(self) -> dict[int, dict]:
        return {t["transaction_id"]: t for t in self.batch.transactions.get(self.key, [])}

    def transaction(self, row: dict) -> dict:
        parent = row["parent_id"]
        cur = Currencies(self.money_of.shop, row["presentment_currency"] or self.money_of.presentment, self.money_of.fx_rate)
        return {
            "__typename": "OrderTransaction",
            "id": gid("OrderTransaction", row["transaction_id"]),
            "kind": (row["kind"] or "sale").upper(),
            "status": (row["status"] or "success").upper(),
            "gateway": row["gateway"],
            "formattedGateway": (row["gateway"] or "").replace("_", " ").title() or None,
            "test": False,
            "createdAt": iso(row["processed_at"]),
            "processedAt": iso(row["processed_at"]),
            "amountSet": cur.bag(row["amount_cents"], row["presentment_amount_cents"]),
            "parentTransaction": lambda info, **args: (
                self.transaction(self.transactions_by_id[parent]) if parent in self.transactions_by_id else None
            ),
            "order": lambda info, **args: self.node,
        }

    def transaction_nodes(self) -> list[dict]:
        return [self.transaction(r) for r in self.batch.transactions.get(self.key, [])]

    def refund_nodes(self) -> list[dict]:
        return [self.refund(r) for r in self.batch.refunds.get(self.key, [])]

    def refund(self, row: dict) -> dict:
        m = self.money_of
        refund_id = row["refund_id"]

        def refund_line(rl: dict) -> dict:
            line = self.lines_by_id.get(rl["line_id"])
            unit = round(rl["subtotal_cents"] / rl["quantity"]) if rl["quantity"] else 0
            return {
                "id": gid("RefundLineItem", rl["refund_line_id"]),
                "quantity": rl["quantity"],
                "restockType": "RETURN" if row["restock"] else "NO_RESTOCK",
                "restocked": bool(row["restock"]),
                "lineItem": line,
                "priceSet": m.bag(unit),
                "subtotalSet": m.bag(rl["subtotal_cents"]),
                "totalTaxSet": m.bag(rl["tax_cents"]),
            }

        return {
            "__typename": "Refund",
            "id": gid("Refund", refund_id),
            "legacyResourceId": str(refund_id),
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["created_at"]),
            "note": row["note"],
            "order": lambda info, **args: self.node,
            "totalRefundedSet": m.bag(row["amount_cents"]),
            "refundLineItems": lambda info, **args: views.paginate_list(
                [refund_line(rl) for rl in self.batch.refund_lines.get(refund_id, [])], args, unlimited=is_bulk(info)
            ),
            "transactions": lambda info, **args: views.paginate_list(
                [self.transaction(t) for t in self.batch.transactions.get(self.key, []) if t["refund_id"] == refund_id],
                args,
                unlimited=is_bulk(info),
            ),
        }

    def fulfillment_nodes(self) -> list[dict]:
        return [self.fulfillment(n, s) for n, s in enumerate(self.batch.shipments.get(self.key, []), start=1)]

    def fulfillment(self, number: int, shipment: dict) -> dict:
        m = self.money_of
        fulfillment_id = shipment["shopify_fulfillment_id"]
        delivered = self.batch.delivered.get(shipment["tracking_number"])
        taken = self.allocation.get(shipment["shipment_id"], [])
        carrier = shipment["carrier"] or ""
        url = TRACKING_URLS.get(carrier.upper(), "https://www.google.com/search?q={}").format(shipment["tracking_number"])

        def fulfillment_line(index: int, line_id: int, qty: int) -> dict:
            line = self.lines_by_id.get(line_id)
            row = next(r for r in self.batch.lines[self.key] if r["line_id"] == line_id)
            unit_net = (row["quantity"] * row["unit_price_cents"] - row["discount_cents"]) / max(row["quantity"], 1)
            return {
                "__typename": "FulfillmentLineItem",
                "id": gid("FulfillmentLineItem", fulfillment_id * 100 + index),
                "quantity": qty,
                "lineItem": line,
                "originalTotalSet": m.bag(qty * row["unit_price_cents"]),
                "discountedTotalSet": m.bag(round(qty * unit_net)),
            }

        items = [fulfillment_line(i, line_id, qty) for i, (line_id, qty) in enumerate(taken, start=1)]
        updated = max(shipment["shipped_at"], delivered) if delivered else shipment["shipped_at"]
        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", fulfillment_id),
            "legacyResourceId": str(fulfillment_id),
            "name": f"{self.row['order_name']}-F{number}",
            "status": "SUCCESS",
            "displayStatus": "DELIVERED" if delivered else "FULFILLED",
            "createdAt": iso(shipment["shipped_at"]),
            "updatedAt": iso(updated),
            "inTransitAt": iso(shipment["shipped_at"]),
            "deliveredAt": iso(delivered),
            "totalQuantity": sum(q for _, q in taken),
            "location": lambda info, **args: self.renderer.catalog.location(),
            "order": lambda info, **args: self.node,
            "trackingInfo": lambda info, first=None: _head(
                [{"company": shipment["carrier"], "number": shipment["tracking_number"], "url": url}], first
            ),
            "fulfillmentLineItems": lambda info, **args: views.paginate_list(items, args, unlimited=is_bulk(info)),
        }


# ---------------------------------------------------------------- Shopify Payments

_BT_TYPES = {"charge": "CHARGE", "refund": "REFUND", "adjustment": "ADJUSTMENT", "payout": "TRANSFER"}
_BT_SOURCES = {
    "charge": "CHARGE", "refund": "REFUND", "dispute": "DISPUTE", "adjustment": "ADJUSTMENT",
    "payout": "TRANSFER", "reserve": "SYSTEM_ADJUSTMENT",
}
_DISPUTE_REASONS = {
    "BANK_CANNOT_PROCESS", "CREDIT_NOT_PROCESSED", "CUSTOMER_INITIATED", "DEBIT_NOT_AUTHORIZED", "DUPLICATE",
    "FRAUDULENT", "GENERAL", "INCORRECT_ACCOUNT_DETAILS", "INSUFFICIENT_FUNDS", "NONCOMPLIANT",
    "PRODUCT_NOT_RECEIVED", "PRODUCT_UNACCEPTABLE", "SUBSCRIPTION_CANCELLED", "UNRECOGNIZED",
}


def balance_transaction_type(kind: str, amount_cents: int) -> str:
    """World type -> ShopifyPaymentsTransactionType (direction decides dispute and reserve rows)."""
    if kind == "dispute":
        return "DISPUTE_WITHDRAWAL" if amount_cents < 0 else "DISPUTE_REVERSAL"
    if kind == "reserve":
        return "RESERVED_FUNDS_WITHDRAWAL" if amount_cents < 0 else "RESERVED_FUNDS_REVERSAL"
    return _BT_TYPES.get(kind, "ADJUSTMENT")


def payout_node(row: dict) -> dict:
    """ShopifyPaymentsPayout from a payouts view row."""
    cur = row["currency"]
    payout_id = row["payout_id"]
    return {
        "__typename": "ShopifyPaymentsPayout",
        "id": gid("ShopifyPaymentsPayout", payout_id),
        "legacyResourceId": str(payout_id),
        "issuedAt": iso(row["created_at"]),
        "net": money(row["amount_cents"], cur),
        "gross": money(row["amount_cents"], cur),
        "status": row["status"],
        "transactionType": "DEPOSIT" if row["amount_cents"] >= 0 else "WITHDRAWAL",
        "externalTraceId": None,
        "summary": {
            "adjustmentsFee": money(row["adjustments_fee_cents"], cur),
            "adjustmentsGross": money(row["adjustments_gross_cents"], cur),
            "advanceFees": money(0, cur),
            "advanceGross": money(0, cur),
            "chargesFee": money(row["charges_fee_cents"], cur),
            "chargesGross": money(row["charges_gross_cents"], cur),
            "refundsFee": money(row["refunds_fee_cents"], cur),
            "refundsFeeGross": money(row["refunds_gross_cents"], cur),
            "reservedFundsFee": money(row["reserved_funds_fee_cents"], cur),
            "reservedFundsGross": money(row["reserved_funds_gross_cents"], cur),
            "retriedPayoutsFee": money(row["retried_payouts_fee_cents"], cur),
            "retriedPayoutsGross": money(row["retried_payouts_gross_cents"], cur),
        },
    }


def balance_transaction_node(row: dict, order_names: dict[int, str]) -> dict:
    """ShopifyPaymentsBalanceTransaction from a balance-transactions view row."""
    cur = row["currency"]
    order_id = row["source_order_id"]
    payout_id = row["payout_id"]
    return {
        "__typename": "ShopifyPaymentsBalanceTransaction",
        "id": gid("ShopifyPaymentsBalanceTransaction", row["bt_id"]),
        "type": balance_transaction_type(row["type"], row["amount_cents"]),
        "test": False,
        "amount": money(row["amount_cents"], cur),
        "fee": money(row["fee_cents"], cur),
        "net": money(row["net_cents"], cur),
        "transactionDate": iso(row["processed_at"]),
        "sourceId": str(row["source_id"]) if row["source_id"] is not None else None,
        "sourceType": _BT_SOURCES.get(row["source_type"] or "", None),
        "sourceOrderTransactionId": (
            str(row["source_order_transaction_id"]) if row["source_order_transaction_id"] is not None else None
        ),
        "associatedOrder": (
            {"id": gid("Order", order_id), "name": order_names.get(order_id, "")} if order_id is not None else None
        ),
        "associatedPayout": {
            "id": gid("ShopifyPaymentsPayout", payout_id) if payout_id is not None else None,
            "status": row["payout_status"],
        },
        "adjustmentReason": None,
    }


def dispute_node(row: dict, now: datetime, order_lookup) -> dict:
    """ShopifyPaymentsDispute from a disputes view row; the order is rendered on demand."""
    due = row["evidence_due_by"]
    reason = (row["reason"] or "general").upper()
    order_id = row["order_id"]
    return {
        "__typename": "ShopifyPaymentsDispute",
        "id": gid("ShopifyPaymentsDispute", row["dispute_id"]),
        "legacyResourceId": str(row["dispute_id"]),
        "amount": money(row["amount_cents"], row["currency"]),
        "initiatedAt": iso(row["initiated_at"]),
        "evidenceDueBy": due.isoformat() if due else None,
        "evidenceSentOn": None,
        "finalizedOn": None,
        "status": "NEEDS_RESPONSE" if due is None or now.date() <= due else "UNDER_REVIEW",
        "type": "INQUIRY" if (row["type"] or "").lower() == "inquiry" else "CHARGEBACK",
        "reasonDetails": {"reason": reason if reason in _DISPUTE_REASONS else "GENERAL", "networkReasonCode": None},
        "order": lambda info, **args: order_lookup(order_id) if order_id is not None else None,
    }
