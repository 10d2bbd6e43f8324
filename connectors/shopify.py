"""Shopify Admin GraphQL API: cost-paced queries, bulk-operation backfills, ``updated_at``
increments, and the tag and note write-backs.

Each stream's first run (no cursor yet) reads through a bulk operation where Shopify supports
one; later runs page through ``query: "updated_at:>='...'"`` sorted by UPDATED_AT. Both paths land
the same record: the node as selected in :mod:`connectors.shopify_queries`, with each nested
connection gathered whole as ``{"nodes": [...]}``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import httpx

from . import shopify_queries as q
from .ingest import Page, Stream
from .pacing import CostPacer, rate_limit_scale
from .records import Field, FieldError, RecordShape, dig
from .shopify_bulk import BulkOperations, BulkQuery
from .transport import ApiClient, SourceError

DEFAULT_API_VERSION = "2026-07"
MAX_QUERY_COST = 1000  # Shopify refuses a query whose requested cost is above this
# Page sizes: each paged query stays under MAX_QUERY_COST by the documented cost rules
# (see shopify_queries); MAX_COST_EXCEEDED halves them should a shop price a field higher.
ORDER_PAGE, ORDER_LINES = 8, 5
NESTED_PAGE = 50  # continuing one nested connection (one parent): 50 nodes stay well under 1000
DETAIL_BATCH, DETAIL_LINES, DETAIL_REFUND_LINES, DETAIL_REFUND_TRANSACTIONS = 10, 10, 5, 3
PRODUCT_PAGE, PRODUCT_VARIANTS = 25, 10
INVENTORY_PAGE, INVENTORY_LEVELS = 40, 5
PAYOUT_PAGE, BALANCE_PAGE, DISPUTE_PAGE = 50, 100, 100
BULK_PAGE = 250  # records per committed page when reading a bulk result
FIELD_ERROR_ATTEMPTS = 4  # sends of a read whose answer failed on the server's side


def _require(env, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class ShopifySettings:
    shop_url: str  # https://{shop}.myshopify.com
    access_token: str
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def from_env(cls, env=os.environ) -> "ShopifySettings":
        shop_url = _require(env, "SHOPIFY_SHOP_URL")
        if not shop_url.startswith(("http://", "https://")):
            raise ValueError(f"SHOPIFY_SHOP_URL must be an http(s) URL such as https://your-shop.myshopify.com, got {shop_url!r}")
        return cls(shop_url=shop_url.rstrip("/"), access_token=_require(env, "SHOPIFY_ACCESS_TOKEN"),
                   api_version=(env.get("SHOPIFY_API_VERSION") or "").strip() or DEFAULT_API_VERSION)

    @property
    def graphql_url(self) -> str:
        return f"{self.shop_url}/admin/api/{self.api_version}/graphql.json"

    def __repr__(self) -> str:  # never print the token
        return f"ShopifySettings(shop_url={self.shop_url!r}, api_version={self.api_version!r})"


class MaxCostExceeded(SourceError):
    """Shopify refused a query as too expensive before running it (MAX_COST_EXCEEDED)."""


class ShopifyClient(ApiClient):
    """Admin GraphQL over one httpx client, paced by the shop's cost bucket."""

    source = "shopify"

    def __init__(self, settings: ShopifySettings, *, download_transport: httpx.BaseTransport | None = None, **kw):
        scale = rate_limit_scale()
        # the documented default bucket (1000 points, 50 restored a second) until the first
        # response reports the shop's own throttleStatus, which the pacer then follows
        pacer = kw.pop("pacer", None) or CostPacer(maximum=1000.0, restore_rate=50.0 * scale)
        super().__init__(settings.shop_url, headers={"Accept": "application/json"}, pacer=pacer, **kw)
        self.settings = settings
        self.graphql_url = settings.graphql_url
        self.download_transport = download_transport
        self.costs: dict[str, float] = {}  # requested cost last reported per query text
        self.bulk = BulkOperations(self, sleep=self.sleep)

    def auth_headers(self) -> dict:
        return {"X-Shopify-Access-Token": self.settings.access_token}

    def throttle_wait(self, response: httpx.Response, body: Any) -> float | None:
        """A 200 whose errors say THROTTLED: wait until the bucket holds the requested cost."""
        if not isinstance(body, dict) or not _error_codes(body) & {"THROTTLED"}:
            return None
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            requested = float(cost.get("requestedQueryCost") or 0)
            available = float(status.get("currentlyAvailable") or 0)
            rate = float(status.get("restoreRate") or 0) or 50.0
        except (TypeError, ValueError):
            return 1.0
        return max(0.0, (requested - available) / rate)

    def graphql(self, query: str, variables: dict | None = None, *, idempotent: bool = True,
                field_error_attempts: int = FIELD_ERROR_ATTEMPTS) -> dict:
        """Run one query or mutation; return ``data`` or raise SourceError with Shopify's messages.

        Request errors (validation, access denied, MAX_COST_EXCEEDED) do not change on retry and
        raise at once. A field error raised while the server resolved the answer (it carries a
        ``path``, with no code or INTERNAL_SERVER_ERROR) is the server's failure, not the
        query's: an idempotent request is sent again a bounded number of times.
        """
        name = _operation_name(query)
        where = f"{self.graphql_url} ({name})"
        for attempt in range(field_error_attempts):
            estimate = self.costs.get(query, 50.0)
            answer = self.request("POST", self.graphql_url, json_body={"query": query, "variables": variables or {}},
                                  cost=min(estimate, MAX_QUERY_COST), idempotent=idempotent)
            body = answer.body
            if not isinstance(body, dict):
                raise SourceError(self.source, "POST", where, answer.status, "response is not a JSON object")
            requested = ((body.get("extensions") or {}).get("cost") or {}).get("requestedQueryCost")
            if isinstance(requested, (int, float)):
                self.costs[query] = float(requested)
            errors = body.get("errors")
            if not errors:
                data = body.get("data")
                if not isinstance(data, dict):
                    raise SourceError(self.source, "POST", where, answer.status, "response has no data")
                return data
            detail = _error_text(errors)
            if _error_codes(body) & {"MAX_COST_EXCEEDED"}:
                raise MaxCostExceeded(self.source, "POST", where, answer.status, detail)
            if not (idempotent and _server_side(errors)) or attempt == field_error_attempts - 1:
                raise SourceError(self.source, "POST", where, answer.status, detail, retryable=_server_side(errors))
            self.stats["retries"] += 1
            self.sleep(self.policy.backoff(attempt + 1))
        raise AssertionError("unreachable")

    # ---- paged reads
    def connection_pages(self, query: str, path: str, variables: dict, resume: dict | None, page_size: int,
                         finish: Callable[[list[dict]], list[dict]] = lambda nodes: nodes) -> Iterator[Page]:
        """Every node of a connection, a page at a time, following ``pageInfo.endCursor``.

        Shopify's GraphQL cursors encode the position in the sorted result and carry no expiry,
        so ``resume`` keeps the cursor and page size; a cursor the shop no longer accepts restarts
        the stream's window (the runner re-passes the same ``since``).
        """
        after = (resume or {}).get("after")
        size = int((resume or {}).get("first") or page_size)
        while True:
            try:
                # a failing page is retried smaller below rather than resent as it was
                data = self.graphql(query, {**variables, "first": size, "after": after},
                                    field_error_attempts=1 if size > 1 else FIELD_ERROR_ATTEMPTS)
            except SourceError as exc:
                if isinstance(exc, MaxCostExceeded) or exc.retryable and exc.status == 200:
                    # too expensive, or a record the server keeps failing to render: smaller
                    # pages (down to one record) get past it without skipping anything
                    if size <= 1:
                        raise
                    size = max(1, size // 2)
                    continue
                if after is not None and (resume or {}).get("after") == after and exc.status == 200:
                    after, resume = None, None  # the stored cursor was refused: read the window again
                    continue
                raise
            resume = None
            connection = dig(data, path) or {}
            nodes = [n for n in connection.get("nodes") or [] if n is not None]
            info = connection.get("pageInfo") or {}
            more = bool(info.get("hasNextPage")) and bool(info.get("endCursor"))
            yield Page(finish(nodes), {"after": info["endCursor"], "first": size} if more else None)
            if not more:
                return
            after = info["endCursor"]
            size = min(page_size, size * 2)  # back towards the full page once past the trouble

    def complete_connection(self, record: dict, key: str, query: str, owner_id: str | None = None) -> None:
        """Gather the rest of a nested connection whose first page did not hold it all."""
        connection = record.get(key)
        if not isinstance(connection, dict):
            return  # absent (a damaged record): left absent, so the record is quarantined
        nodes = list(connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage") and info.get("endCursor"):
            owner = owner_id or record["id"]
            data = self.graphql(query, {"id": owner, "first": NESTED_PAGE, "after": info["endCursor"]})
            more = (data.get("node") or {}).get(key)
            if not isinstance(more, dict):
                # never land a record with part of its children missing
                raise SourceError(self.source, "POST", f"{self.graphql_url} ({_operation_name(query)})", 200,
                                  f"cannot continue {key} of {owner}: node(id) returned nothing")
            nodes += [n for n in more.get("nodes") or [] if n is not None]
            info = more.get("pageInfo") or {}
        record[key] = {"nodes": nodes}

    # ---- writes (write-back)
    def add_tags(self, order_id: str | int, tags: list[str]) -> dict:
        """tagsAdd on an order; adding tags it already has changes nothing, so a retry is safe."""
        payload = self.graphql(q.TAGS_ADD, {"id": order_gid(order_id), "tags": list(tags)}, idempotent=True)["tagsAdd"] or {}
        self._raise_user_errors("tagsAdd", payload)
        return payload.get("node") or {}

    def update_order(self, order_id: str | int, *, note: str | None = None, tags: list[str] | None = None) -> dict:
        """orderUpdate with a note and/or the full tag list; it sets values, so a retry is safe."""
        order_input: dict[str, Any] = {"id": order_gid(order_id)}
        if note is not None:
            order_input["note"] = note
        if tags is not None:
            order_input["tags"] = list(tags)
        payload = self.graphql(q.ORDER_UPDATE, {"input": order_input}, idempotent=True)["orderUpdate"] or {}
        self._raise_user_errors("orderUpdate", payload)
        return payload.get("order") or {}

    def _raise_user_errors(self, mutation: str, payload: dict) -> None:
        errors = payload.get("userErrors") or []
        if errors:
            detail = "; ".join(f"{'.'.join(e.get('field') or [])}: {e.get('message')}" for e in errors)
            raise SourceError(self.source, "POST", f"{self.graphql_url} ({mutation})", 200, f"userErrors: {detail}")


def order_gid(order_id: str | int) -> str:
    text = str(order_id)
    return text if text.startswith("gid://") else f"gid://shopify/Order/{text}"


def _error_codes(body: dict) -> set[str]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return set()
    return {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}


def _error_text(errors) -> str:
    if isinstance(errors, str):
        return errors[:800]
    return "; ".join(f"{e.get('message')} ({(e.get('extensions') or {}).get('code', 'no code')})" if isinstance(e, dict) else str(e)
                     for e in errors)[:800]


def _server_side(errors) -> bool:
    """Field errors raised while resolving (a ``path``, no client-side code): the server failed."""
    if not isinstance(errors, list) or not errors:
        return False
    for error in errors:
        if not isinstance(error, dict) or not error.get("path"):
            return False
        code = (error.get("extensions") or {}).get("code")
        if code not in (None, "INTERNAL_SERVER_ERROR"):
            return False
    return True


def _operation_name(query: str) -> str:
    words = query.replace("{", " { ").replace("(", " ( ").split()
    if len(words) > 1 and words[0] in ("query", "mutation") and words[1] not in ("{", "("):
        return words[1]
    return "bulk query" if "bulkOperationRunQuery" in query else "query"


def search_since(field_name: str, since: datetime) -> str:
    """A search term for records changed at or after ``since`` (UTC, second precision)."""
    stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{field_name}:>='{stamp}'"


# ---------------------------------------------------------------- stream readers


class ShopifyReaders:
    """The page readers of each stream, over one client."""

    def __init__(self, client: ShopifyClient, bulk_backfill: bool = True):
        self.client = client
        self.bulk_backfill = bulk_backfill

    def _backfill(self, since, resume) -> bool:
        """Bulk when the stream has no cursor yet, or when resuming a bulk read."""
        if resume and "bulk_id" in resume:
            return True
        return self.bulk_backfill and since is None and not (resume and "after" in resume)

    # ---- orders
    def orders(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        if self._backfill(since, resume):
            bulk = BulkQuery(q.ORDERS_BULK, {"LineItem": "lineItems"})
            yield from self.client.bulk.pages(bulk, resume, BULK_PAGE, self._order_details)
            return
        variables = {"query": search_since("updated_at", since) if since else None, "lines": ORDER_LINES}
        yield from self.client.connection_pages(q.ORDERS_PAGE, "orders", variables, resume, ORDER_PAGE, self._finish_orders)

    def _finish_orders(self, orders: list[dict]) -> list[dict]:
        for order in orders:
            self.client.complete_connection(order, "lineItems", q.ORDER_LINES_PAGE)
        return self._order_details(orders)

    def _order_details(self, orders: list[dict]) -> list[dict]:
        """Fulfillment and refund line items (connections inside list fields, which bulk cannot read)."""
        wanted = [o for o in orders if o.get("id") and (_has_items(o.get("fulfillments")) or _has_items(o.get("refunds")))]
        batch_size = DETAIL_BATCH
        start = 0
        while start < len(wanted):
            batch = wanted[start:start + batch_size]
            try:
                data = self.client.graphql(q.ORDER_DETAILS, {
                    "ids": [o["id"] for o in batch], "lines": DETAIL_LINES, "refundLines": DETAIL_REFUND_LINES,
                    "refundTransactions": DETAIL_REFUND_TRANSACTIONS})
            except MaxCostExceeded:
                if batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                continue
            details = {d["id"]: d for d in data.get("nodes") or [] if isinstance(d, dict) and d.get("id")}
            for order in batch:
                self._merge_details(order, details.get(order["id"]))
            start += len(batch)
        return orders

    def _merge_details(self, order: dict, detail: dict | None) -> None:
        if detail is None:
            return
        fulfillments = {f["id"]: f for f in detail.get("fulfillments") or [] if f}
        for fulfillment in order.get("fulfillments") or []:
            found = fulfillments.get(fulfillment.get("id"))
            if found is None:
                continue
            fulfillment["fulfillmentLineItems"] = found.get("fulfillmentLineItems")
            self.client.complete_connection(fulfillment, "fulfillmentLineItems", q.FULFILLMENT_LINES_PAGE)
        refunds = {r["id"]: r for r in detail.get("refunds") or [] if r}
        for refund in order.get("refunds") or []:
            found = refunds.get(refund.get("id"))
            if found is None:
                continue
            refund["refundLineItems"] = found.get("refundLineItems")
            refund["transactions"] = found.get("transactions")
            self.client.complete_connection(refund, "refundLineItems", q.REFUND_LINES_PAGE)
            self.client.complete_connection(refund, "transactions", q.REFUND_TRANSACTIONS_PAGE)

    # ---- products
    def products(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        if self._backfill(since, resume):
            bulk = BulkQuery(q.PRODUCTS_BULK, {"ProductVariant": "variants"})
            yield from self.client.bulk.pages(bulk, resume, BULK_PAGE)
            return
        variables = {"query": search_since("updated_at", since) if since else None, "lines": PRODUCT_VARIANTS}

        def finish(products: list[dict]) -> list[dict]:
            for product in products:
                self.client.complete_connection(product, "variants", q.PRODUCT_VARIANTS_PAGE)
            return products

        yield from self.client.connection_pages(q.PRODUCTS_PAGE, "products", variables, resume, PRODUCT_PAGE, finish)

    # ---- inventory levels
    def inventory_levels(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Every level of every inventory item, read whole each run.

        Quantities move with every sale and receipt, and a level's own updatedAt is what the
        source says; reading the few (items x locations) rows whole each run is simpler and
        surer than trusting an item's updatedAt to move with its levels.
        """
        def finish(items: list[dict]) -> list[dict]:
            records: list[dict] = []
            for item in items:
                self.client.complete_connection(item, "inventoryLevels", q.INVENTORY_LEVELS_PAGE)
                records += inventory_level_records(item)
            return records

        yield from self.client.connection_pages(q.INVENTORY_PAGE, "inventoryItems", {"levels": INVENTORY_LEVELS},
                                                resume, INVENTORY_PAGE, finish)

    # ---- Shopify Payments
    def payouts(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Payouts have no updated time; issuedAt is when one appears, and its status then moves
        SCHEDULED -> PAID (or FAILED) without a timestamp. So an increment reads payouts issued
        since the cursor (minus the stream's lookback) and every payout still SCHEDULED."""
        if self._backfill(since, resume):
            yield from self.client.bulk.pages(BulkQuery(q.PAYOUTS_BULK), resume, BULK_PAGE)
            return
        search = f"{search_since('issued_at', since)} OR status:scheduled" if since else None
        yield from self.client.connection_pages(q.PAYOUTS_PAGE, "shopifyPaymentsAccount.payouts", {"query": search},
                                                resume, PAYOUT_PAGE)

    def balance_transactions(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Balance transactions have no updated time either: transactionDate (search ``processed_at``)
        is when one happens, and it changes afterwards only when Shopify assigns it to a payout and
        that payout is paid. An increment therefore reads transactions processed since the cursor
        (minus lookback), those in payouts dated since then (assigned or paid lately), and every
        transaction whose payout is still PENDING or SCHEDULED."""
        if self._backfill(since, resume):
            yield from self.client.bulk.pages(BulkQuery(q.BALANCE_TRANSACTIONS_BULK), resume, BULK_PAGE)
            return
        search = (f"{search_since('processed_at', since)} OR payout_date:>='{since.astimezone(timezone.utc).date().isoformat()}'"
                  " OR payout_status:pending OR payout_status:scheduled" if since else None)
        yield from self.client.connection_pages(q.BALANCE_TRANSACTIONS_PAGE, "shopifyPaymentsAccount.balanceTransactions",
                                                {"query": search}, resume, BALANCE_PAGE)

    def disputes(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Disputes are few, and their status moves for weeks (NEEDS_RESPONSE -> UNDER_REVIEW ->
        WON/LOST) with no change time to filter on: read them whole each run."""
        yield from self.client.connection_pages(q.DISPUTES_PAGE, "shopifyPaymentsAccount.disputes", {"query": None},
                                                resume, DISPUTE_PAGE)


def _has_items(value) -> bool:
    return isinstance(value, list) and len(value) > 0


def inventory_level_records(item: dict) -> list[dict]:
    """One record per (inventory item, location): the level node with its item alongside."""
    levels = item.get("inventoryLevels")
    summary = {k: v for k, v in item.items() if k != "inventoryLevels"}
    if not isinstance(levels, dict):
        # a damaged item: keep it as a record the shape will quarantine, naming what is missing
        return [{"inventoryItem": summary, "_missing": "inventoryLevels"}]
    return [{**level, "inventoryItem": summary} for level in levels.get("nodes") or [] if level]


# ---------------------------------------------------------------- shapes


def gid_tail(value: Any) -> str | None:
    """The numeric id at the end of a GID (``gid://shopify/Order/12`` -> ``12``)."""
    if not isinstance(value, str) or not value:
        return None
    return value.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def complete(expected: tuple[str, ...], then: str | Callable[[dict], Any], nested: dict[str, tuple[str, ...]] | None = None):
    """A field reader that first checks the record carries every field the query selected.

    GraphQL always returns what was selected (null when empty), so an absent key means the
    record was damaged in transit; the reason names the missing field.
    """
    def read(record: dict) -> Any:
        if record.get("_missing"):
            raise FieldError(f"{record['_missing']}: missing")
        for name in expected:
            if name not in record:
                raise FieldError(f"{name}: missing")
        for key, names in (nested or {}).items():
            inner = record.get(key)
            if isinstance(inner, dict):
                for name in names:
                    if name not in inner:
                        raise FieldError(f"{key}.{name}: missing")
        return then(record) if callable(then) else dig(record, then)
    return read


def _quantity(name: str):
    def read(record: dict) -> Any:
        for quantity in record.get("quantities") or []:
            if isinstance(quantity, dict) and quantity.get("name") == name:
                return quantity.get("quantity")
        return None
    return read


ORDER_KEYS = q.top_level_fields(q.ORDER_FIELDS) + ("lineItems",)
PRODUCT_KEYS = q.top_level_fields(q.PRODUCT_FIELDS) + ("variants",)
ITEM_KEYS = q.top_level_fields(q.INVENTORY_ITEM_FIELDS)
LEVEL_KEYS = q.top_level_fields(q.INVENTORY_LEVEL_FIELDS)
PAYOUT_KEYS = q.top_level_fields(q.PAYOUT_FIELDS)
BALANCE_KEYS = q.top_level_fields(q.BALANCE_TRANSACTION_FIELDS)
DISPUTE_KEYS = q.top_level_fields(q.DISPUTE_FIELDS)

SHAPES = {
    "orders": RecordShape(
        key=Field("order_id", "legacyResourceId", required=True),
        updated_at=Field("updated_at", complete(ORDER_KEYS, "updatedAt"), "instant", required=True),
        fields=(
            Field("name", "name", required=True),
            Field("created_at", "createdAt", "instant", required=True),
            Field("processed_at", "processedAt", "instant"),
            Field("cancelled_at", "cancelledAt", "instant"),
            # nullable in the schema but filled on every real order, and reconciliation needs them:
            # a null here is a damaged record worth a human's look, so these three are required
            Field("financial_status", "displayFinancialStatus", required=True),
            Field("fulfillment_status", "displayFulfillmentStatus"),
            Field("currency", "currencyCode", required=True, currency=True),
            Field("presentment_currency", "presentmentCurrencyCode", currency=True),
            Field("total_price", "totalPriceSet.shopMoney.amount", "money", required=True, non_negative=True),
            Field("total_price_presentment", "totalPriceSet.presentmentMoney.amount", "money", non_negative=True),
            Field("subtotal_price", "subtotalPriceSet.shopMoney.amount", "money", required=True, non_negative=True),
            Field("total_tax", "totalTaxSet.shopMoney.amount", "money", required=True, non_negative=True),
            Field("total_shipping", "totalShippingPriceSet.shopMoney.amount", "money", non_negative=True),
            Field("total_discounts", "totalDiscountsSet.shopMoney.amount", "money", non_negative=True),
            Field("current_total_price", "currentTotalPriceSet.shopMoney.amount", "money", non_negative=True),
            Field("total_refunded", "totalRefundedSet.shopMoney.amount", "money", non_negative=True),
            Field("customer_id", lambda r: (r.get("customer") or {}).get("legacyResourceId")),
        )),
    "products": RecordShape(
        key=Field("product_id", "legacyResourceId", required=True),
        updated_at=Field("updated_at", complete(PRODUCT_KEYS, "updatedAt"), "instant", required=True),
        fields=(
            Field("title", "title", required=True),
            Field("handle", "handle"),
            Field("status", "status"),
            Field("vendor", "vendor"),
            Field("product_type", "productType"),
            Field("created_at", "createdAt", "instant"),
            Field("variant_count", lambda r: len((r.get("variants") or {}).get("nodes") or []), "int", non_negative=True),
        )),
    "inventory_levels": RecordShape(
        key=Field("level_key", lambda r: (f"{gid_tail(dig(r, 'inventoryItem.id'))}:{gid_tail(dig(r, 'location.id'))}"
                                          if dig(r, "inventoryItem.id") and dig(r, "location.id") else None), required=True),
        updated_at=Field("updated_at", complete(LEVEL_KEYS + ("inventoryItem",), "updatedAt", {"inventoryItem": ITEM_KEYS}),
                         "instant", required=True),
        fields=(
            Field("inventory_item_id", lambda r: gid_tail(dig(r, "inventoryItem.id")), required=True),
            Field("location_id", lambda r: gid_tail(dig(r, "location.id")), required=True),
            Field("sku", "inventoryItem.sku"),
            Field("available", _quantity("available"), "int"),  # may go below zero when oversold
            Field("on_hand", _quantity("on_hand"), "int", non_negative=True),
            Field("committed", _quantity("committed"), "int", non_negative=True),
            Field("incoming", _quantity("incoming"), "int", non_negative=True),
        )),
    "payouts": RecordShape(
        key=Field("payout_id", "legacyResourceId", required=True),
        # no updatedAt on payouts: issuedAt is the change field (see ShopifyReaders.payouts)
        updated_at=Field("updated_at", complete(PAYOUT_KEYS, "issuedAt"), "instant", required=True),
        fields=(
            Field("status", "status", required=True),
            Field("issued_at", "issuedAt", "instant", required=True),
            Field("issued_on", "issuedAt", "date"),
            Field("direction", "transactionType"),
            Field("net_amount", "net.amount", "money", required=True),
            Field("currency", "net.currencyCode", required=True, currency=True),
            Field("charges_gross", "summary.chargesGross.amount", "money"),
            Field("charges_fee", "summary.chargesFee.amount", "money"),
            Field("refunds_gross", "summary.refundsFeeGross.amount", "money"),
            Field("refunds_fee", "summary.refundsFee.amount", "money"),
            Field("adjustments_gross", "summary.adjustmentsGross.amount", "money"),
            Field("adjustments_fee", "summary.adjustmentsFee.amount", "money"),
            Field("reserved_funds_gross", "summary.reservedFundsGross.amount", "money"),
            Field("reserved_funds_fee", "summary.reservedFundsFee.amount", "money"),
        )),
    "balance_transactions": RecordShape(
        key=Field("transaction_id", lambda r: gid_tail(r.get("id")), required=True),
        # no updatedAt: transactionDate is the change field, with pending payouts re-read
        updated_at=Field("updated_at", complete(BALANCE_KEYS, "transactionDate"), "instant", required=True),
        fields=(
            Field("type", "type", required=True),
            Field("transaction_at", "transactionDate", "instant", required=True),
            Field("amount", "amount.amount", "money", required=True),
            Field("fee", "fee.amount", "money"),
            Field("net", "net.amount", "money", required=True),
            Field("currency", "amount.currencyCode", required=True, currency=True),
            Field("source_id", "sourceId"),
            Field("source_type", "sourceType"),
            Field("source_order_id", lambda r: gid_tail(dig(r, "associatedOrder.id"))),
            Field("source_order_transaction_id", "sourceOrderTransactionId"),
            Field("payout_id", lambda r: gid_tail(dig(r, "associatedPayout.id"))),
            Field("payout_status", "associatedPayout.status"),
        )),
    "disputes": RecordShape(
        key=Field("dispute_id", "legacyResourceId", required=True),
        # no updatedAt on disputes: initiatedAt is the cursor's field; the stream is read whole
        updated_at=Field("updated_at", complete(DISPUTE_KEYS, "initiatedAt"), "instant", required=True),
        fields=(
            Field("order_id", lambda r: gid_tail(dig(r, "order.id"))),
            Field("type", "type"),
            Field("amount", "amount.amount", "money", required=True, non_negative=True),
            Field("currency", "amount.currencyCode", required=True, currency=True),
            Field("reason", "reasonDetails.reason"),
            Field("status", "status", required=True),
            Field("initiated_at", "initiatedAt", "instant", required=True),
            Field("evidence_due_by", "evidenceDueBy", "date"),
            Field("finalized_on", "finalizedOn", "date"),
        )),
}


def streams(client: ShopifyClient, bulk_backfill: bool = True) -> list[Stream]:
    """One stream per entity; orders and products incremental by updatedAt, the rest as documented above."""
    readers = ShopifyReaders(client, bulk_backfill=bulk_backfill)
    return [
        Stream("shopify", "orders", SHAPES["orders"], readers.orders,
               description="Orders with line items, fulfillments (lines, tracking), refunds (lines, transactions), transactions"),
        Stream("shopify", "products", SHAPES["products"], readers.products, description="Products with variants"),
        Stream("shopify", "inventory_levels", SHAPES["inventory_levels"], readers.inventory_levels,
               description="Available and on-hand quantity per inventory item and location (full refresh)"),
        # a payout usually moves SCHEDULED -> PAID within days; the lookback and the status term cover it
        Stream("shopify", "payouts", SHAPES["payouts"], readers.payouts, lookback=timedelta(days=10),
               description="Shopify Payments payouts"),
        Stream("shopify", "balance_transactions", SHAPES["balance_transactions"], readers.balance_transactions,
               lookback=timedelta(days=10), description="Shopify Payments balance transactions"),
        Stream("shopify", "disputes", SHAPES["disputes"], readers.disputes, description="Shopify Payments disputes (full refresh)"),
    ]
