"""Shopify Admin GraphQL API emulator (``POST /admin/api/{version}/graphql.json``).

Queries run with graphql-core against ``shopify_schema.graphql``, a subset of the real schema,
so unknown fields and arguments get real validation errors. Each request is charged its
calculated cost against a leaky bucket (2000 points, 100 restored per second) and refunded
the difference between requested and actual cost, as Shopify does. Bulk operations write a
JSONL file served under ``/_sandbox/bulk-results/``; tag and note write-backs are kept in the
sandbox's write store and show in later reads.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from importlib import resources
from zoneinfo import ZoneInfo

import polars as pl
from graphql import ExecutionResult, GraphQLError, build_schema, execute, parse, validate
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..world import SHOP_CURRENCY, SHOP_DOMAIN, SHOP_TIMEZONE, parse_instant
from . import shopify_views as views
from .shopify_bulk import BulkOperations, BulkWindow
from .shopify_cost import MAX_QUERY_COST, actual_cost, requested_cost
from .shopify_render import (
    Annotation,
    Catalog,
    OrderRenderer,
    balance_transaction_node,
    dispute_node,
    gid,
    money,
    parse_gid,
    payout_node,
)
from .throttle import LeakyBucket

SCHEMA = build_schema(resources.files(__package__).joinpath("shopify_schema.graphql").read_text())
BUCKET_SIZE = 2000.0
RESTORE_RATE = 100.0
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
AUTH_ERROR = "[API] Invalid API key or access token (unrecognized login or wrong password)"
SHOP_NAME = "Closeloop Sandbox"

SF = views.SearchField
ORDER_SEARCH = {
    "updated_at": SF("updated_at", "datetime"),
    "created_at": SF("created_at", "datetime"),
    "processed_at": SF("processed_at", "datetime"),
    "id": SF("order_id", "int"),
    "name": SF("order_name", "text"),
    "email": SF("email", "text"),
    "financial_status": SF("financial_status", "enum"),
    "fulfillment_status": SF("fulfillment_status", "enum"),
    "status": SF("order_status", "enum"),
    "tag": SF("tags", "tag"),
    "discount_code": SF("discount_code", "text"),
}
ORDER_SORT = {
    "CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "PROCESSED_AT": "processed_at", "ID": "order_id",
    "ORDER_NUMBER": "order_number", "TOTAL_PRICE": "order_total_cents", "FINANCIAL_STATUS": "financial_status",
    "FULFILLMENT_STATUS": "fulfillment_status", "TOTAL_ITEMS_QUANTITY": "line_quantity",
}
PRODUCT_SEARCH = {
    "updated_at": SF("updated_at", "datetime"),
    "created_at": SF("created_at", "datetime"),
    "published_at": SF("published_at", "datetime"),
    "id": SF("product_id", "int"),
    "title": SF("title", "text"),
    "handle": SF("handle", "text"),
    "product_type": SF("product_type", "text"),
    "vendor": SF("vendor", "text"),
    "status": SF("status", "enum"),
}
PRODUCT_SORT = {
    "CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "ID": "product_id", "TITLE": "title",
    "PRODUCT_TYPE": "product_type", "VENDOR": "vendor", "PUBLISHED_AT": "published_at",
}
VARIANT_SEARCH = {
    "updated_at": SF("updated_at", "datetime"),
    "created_at": SF("created_at", "datetime"),
    "id": SF("variant_id", "int"),
    "product_id": SF("product_id", "int"),
    "sku": SF("sku", "text"),
    "barcode": SF("barcode", "text"),
    "title": SF("title", "text"),
}
VARIANT_SORT = {"ID": "variant_id", "SKU": "sku", "TITLE": "title", "FULL_TITLE": "title", "NAME": "title", "POSITION": "position"}
ITEM_SEARCH = {
    "updated_at": SF("updated_at", "datetime"),
    "created_at": SF("created_at", "datetime"),
    "id": SF("inventory_item_id", "int"),
    "sku": SF("sku", "text"),
}
PAYOUT_SEARCH = {
    "id": SF("payout_id", "int"),
    "issued_at": SF("created_at", "datetime"),
    "date": SF("payout_date", "date"),
    "payout_date": SF("payout_date", "date"),
    "status": SF("status", "enum"),
}
PAYOUT_SORT = {"ID": "payout_id", "ISSUED_AT": "created_at", "STATUS": "status", "AMOUNT": "amount_cents",
               "CHARGE_GROSS": "charges_gross_cents", "REFUND_GROSS": "refunds_gross_cents",
               "ADJUSTMENT_GROSS": "adjustments_gross_cents", "FEE_AMOUNT": "charges_fee_cents"}
BALANCE_SEARCH = {
    "id": SF("bt_id", "int"),
    "processed_at": SF("processed_at", "datetime"),
    "payout_date": SF("payout_date", "date"),
    "payout_status": SF("payout_status", "enum"),
    "payments_transfer_id": SF("payout_id", "int"),
    "payout_id": SF("payout_id", "int"),
    "transaction_type": SF("api_type", "enum"),
    "type": SF("api_type", "enum"),
}
BALANCE_SORT = {"ID": "bt_id", "PROCESSED_AT": "processed_at", "PAYOUT_DATE": "payout_date", "AMOUNT": "amount_cents",
                "FEE": "fee_cents", "NET": "net_cents", "PAYOUT_STATUS": "payout_status", "TRANSACTION_TYPE": "api_type"}
DISPUTE_SEARCH = {"id": SF("dispute_id", "int"), "initiated_at": SF("initiated_at", "datetime")}


# ---------------------------------------------------------------- per-request state


@dataclass
class RequestState:
    """What one request (or one page of a bulk run) resolves against."""

    app: "ShopifyEmulator"
    now: datetime
    bulk: BulkWindow | None = None

    @property
    def ctx(self):
        return self.app.ctx

    @cached_property
    def annotations(self) -> dict[int, Annotation]:
        """Tags and notes clients wrote on orders, by order id."""
        return self.app.annotations()

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.ctx, self.now)

    @cached_property
    def renderer(self) -> OrderRenderer:
        return OrderRenderer(self.ctx, self.now, self.catalog, self.annotations)

    @cached_property
    def orders_view(self) -> pl.DataFrame:
        return views.with_annotations(views.shopify_orders(self.ctx, self.now), self.annotations, self.now)

    def orders_by_id(self, ids: list[int]) -> dict[int, dict]:
        rows = self.orders_view.filter(pl.col("order_id").is_in(ids)).to_dicts()
        return {int(n["legacyResourceId"]): n for n in self.renderer.render(rows)}

    @cached_property
    def order_names(self) -> dict[int, str]:
        view = views.shopify_orders(self.ctx, self.now)
        return dict(zip(view["order_id"].to_list(), view["order_name"].to_list()))


class Root:
    """Resolvers of the Query and Mutation roots (graphql-core calls ``method(info, **args)``)."""

    def __init__(self, app: "ShopifyEmulator"):
        self.app = app

    # ---- listings
    def _listing(self, info, frame: pl.DataFrame, id_column: str, sort_by: str, args: dict, render, search=None, faults=True) -> dict:
        state: RequestState = info.context
        window = state.bulk
        outer = window is not None and info.field_nodes[0] is window.outer
        if search is not None and not (outer and window.ordered is not None):
            condition = views.search_filter(args.get("query"), search, state.now)
            if condition is not None:
                frame = frame.filter(condition)
        first, after, last, before = args.get("first"), args.get("after"), args.get("last"), args.get("before")
        if outer:
            # a bulk run sorts the listing once and walks it by position, ignoring first/after
            if window.ordered is None:
                window.ordered = views.sorted_listing(frame, id_column, sort_by, bool(args.get("reverse")))
            page = views.page_at(window.ordered, window.offset, window.size)
            window.offset += page.rows.height
        else:
            page = views.paginate(
                frame, id_column, sort_by, bool(args.get("reverse")), first, after, last, before,
                unlimited=window is not None,
            )
        nodes = render(page.rows.to_dicts())
        by_id = {n["id"]: c for n, c in zip(nodes, page.cursors)}
        if outer:
            window.end_cursor = page.cursors[-1] if page.cursors else None
            window.has_next = page.has_next
        elif window is None and faults:
            # record faults (repeats, missing fields) reach API readers, never bulk files
            nodes = state.ctx.faults["shopify"].mutate(nodes, ("id",))
        return views.connection([by_id.get(n.get("id"), "") for n in nodes], nodes, page.has_next, page.has_previous)

    # ---- Query
    def shop(self, info):
        now = info.context.now
        zone = ZoneInfo(SHOP_TIMEZONE)
        currencies = sorted(set(views.shopify_orders(self.app.ctx, now)["presentment_currency"].drop_nulls().to_list()) | {SHOP_CURRENCY})
        return {
            "__typename": "Shop",
            "id": gid("Shop", 1),
            "name": SHOP_NAME,
            "email": f"owner@{SHOP_DOMAIN}",
            "myshopifyDomain": SHOP_DOMAIN,
            "currencyCode": SHOP_CURRENCY,
            "ianaTimezone": SHOP_TIMEZONE,
            "timezoneAbbreviation": now.astimezone(zone).tzname(),
            "enabledPresentmentCurrencies": [c for c in currencies if c in SCHEMA.get_type("CurrencyCode").values],
        }

    def orders(self, info, **args):
        state: RequestState = info.context
        sort_by = ORDER_SORT.get(args.get("sortKey") or "PROCESSED_AT", "order_id")
        return self._listing(info, state.orders_view, "order_id", sort_by, args, state.renderer.render, ORDER_SEARCH)

    def order(self, info, id):
        found = parse_gid(id)
        if not found or found[0] != "Order":
            return None
        return info.context.orders_by_id([found[1]]).get(found[1])

    def products(self, info, **args):
        state: RequestState = info.context
        frame = views.shopify_products(self.app.ctx, state.now)
        sort_by = PRODUCT_SORT.get(args.get("sortKey") or "ID", "product_id")
        render = lambda rows: [state.catalog.product(r["product_id"]) for r in rows]
        return self._listing(info, frame, "product_id", sort_by, args, render, PRODUCT_SEARCH)

    def product(self, info, id):
        found = parse_gid(id)
        return info.context.catalog.product(found[1]) if found and found[0] == "Product" else None

    def productVariants(self, info, **args):
        state: RequestState = info.context
        frame = views.shopify_variants(self.app.ctx, state.now)
        sort_by = VARIANT_SORT.get(args.get("sortKey") or "ID", "variant_id")
        render = lambda rows: [state.catalog.variant(r["variant_id"]) for r in rows]
        return self._listing(info, frame, "variant_id", sort_by, args, render, VARIANT_SEARCH)

    def productVariant(self, info, id):
        found = parse_gid(id)
        return info.context.catalog.variant(found[1]) if found and found[0] == "ProductVariant" else None

    def inventoryItems(self, info, **args):
        state: RequestState = info.context
        frame = views.shopify_variants(self.app.ctx, state.now)
        render = lambda rows: [state.catalog.inventory_item(r["inventory_item_id"]) for r in rows]
        return self._listing(info, frame, "inventory_item_id", "inventory_item_id", args, render, ITEM_SEARCH)

    def inventoryItem(self, info, id):
        found = parse_gid(id)
        return info.context.catalog.inventory_item(found[1]) if found and found[0] == "InventoryItem" else None

    def locations(self, info, **args):
        state: RequestState = info.context
        return views.paginate_list([state.catalog.location()], args, unlimited=state.bulk is not None)

    def location(self, info, id=None):
        location = info.context.catalog.location()
        return location if id is None or location["id"] == id.split("?")[0] else None

    def shopifyPaymentsAccount(self, info):
        state: RequestState = info.context
        ctx, now = self.app.ctx, state.now
        root = self

        def payouts(info, **args):
            frame = views.shopify_payouts(ctx, now)
            sort_by = PAYOUT_SORT.get(args.get("sortKey") or "ID", "payout_id")
            return root._listing(info, frame, "payout_id", sort_by, args, lambda rows: [payout_node(r) for r in rows], PAYOUT_SEARCH)

        def balance_transactions(info, **args):
            frame = views.shopify_balance_transactions(ctx, now)
            if args.get("hideTransfers"):
                frame = frame.filter(pl.col("type") != "payout")
            sort_by = BALANCE_SORT.get(args.get("sortKey") or "ID", "bt_id")
            names = state.order_names
            render = lambda rows: [balance_transaction_node(r, names) for r in rows]
            return root._listing(info, frame, "bt_id", sort_by, args, render, BALANCE_SEARCH)

        def disputes(info, **args):
            frame = views.shopify_disputes(ctx, now)
            lookup = lambda order_id: state.orders_by_id([order_id]).get(order_id)
            render = lambda rows: [dispute_node(r, now, lookup) for r in rows]
            return root._listing(info, frame, "dispute_id", "dispute_id", args, render, DISPUTE_SEARCH)

        unpaid = views.shopify_balance_transactions(ctx, now).filter(pl.col("payout_id").is_null())["net_cents"].sum()
        return {
            "__typename": "ShopifyPaymentsAccount",
            "id": gid("ShopifyPaymentsAccount", 1),
            "activated": True,
            "country": "US",
            "defaultCurrency": SHOP_CURRENCY,
            "onboardable": False,
            "balance": [money(int(unpaid or 0), SHOP_CURRENCY)],
            "payouts": payouts,
            "balanceTransactions": balance_transactions,
            "disputes": disputes,
        }

    def currentBulkOperation(self, info, type="QUERY"):
        if type != "QUERY":
            return None
        record = self.app.bulk.current()
        return self.app.bulk.node(self.app.bulk.poll(record)) if record else None

    def node(self, info, id):
        return self._node(info, id)

    def nodes(self, info, ids):
        return [self._node(info, i) for i in ids]

    def _node(self, info, value: str):
        state: RequestState = info.context
        found = parse_gid(value)
        if not found:
            raise GraphQLError(f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"})
        kind, number = found
        if kind == "Order":
            return state.orders_by_id([number]).get(number)
        if kind == "Product":
            return state.catalog.product(number)
        if kind == "ProductVariant":
            return state.catalog.variant(number)
        if kind == "InventoryItem":
            return state.catalog.inventory_item(number)
        if kind == "Location":
            location = state.catalog.location()
            return location if location["id"] == value.split("?")[0] else None
        if kind == "BulkOperation":
            record = self.app.bulk.get(number)
            return self.app.bulk.node(self.app.bulk.poll(record)) if record else None
        if kind == "ShopifyPaymentsPayout":
            rows = views.shopify_payouts(self.app.ctx, state.now).filter(pl.col("payout_id") == number).to_dicts()
            return payout_node(rows[0]) if rows else None
        if kind == "ShopifyPaymentsBalanceTransaction":
            rows = views.shopify_balance_transactions(self.app.ctx, state.now).filter(pl.col("bt_id") == number).to_dicts()
            return balance_transaction_node(rows[0], state.order_names) if rows else None
        if kind == "ShopifyPaymentsDispute":
            rows = views.shopify_disputes(self.app.ctx, state.now).filter(pl.col("dispute_id") == number).to_dicts()
            lookup = lambda order_id: state.orders_by_id([order_id]).get(order_id)
            return dispute_node(rows[0], state.now, lookup) if rows else None
        return None

    # ---- Mutation
    def bulkOperationRunQuery(self, info, query, groupObjects=False):
        record, errors = self.app.bulk.run_query(query)
        return {"bulkOperation": self.app.bulk.node(record) if record else None, "userErrors": errors}

    def bulkOperationCancel(self, info, id):
        found = parse_gid(id)
        if not found or found[0] != "BulkOperation":
            return {"bulkOperation": None, "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}
        record, errors = self.app.bulk.cancel(found[1])
        return {"bulkOperation": self.app.bulk.node(record) if record else None, "userErrors": errors}

    def tagsAdd(self, info, id, tags):
        return self._retag(info, id, tags, add=True)

    def tagsRemove(self, info, id, tags):
        return self._retag(info, id, tags, add=False)

    def _retag(self, info, value, tags, add: bool):
        state: RequestState = info.context
        order_id = self._existing_order(state, value)
        if order_id is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        current = state.annotations.get(order_id)
        existing = list(current.tags) if current else []
        cleaned = _clean_tags(tags)
        if add:
            lowered = {t.lower() for t in existing}
            merged = existing + [t for t in cleaned if t.lower() not in lowered]
        else:
            drop = {t.lower() for t in cleaned}
            merged = [t for t in existing if t.lower() not in drop]
        self.app.annotate(order_id, tags=merged, note=current.note if current else None)
        fresh = RequestState(self.app, state.now)
        return {"node": fresh.orders_by_id([order_id]).get(order_id), "userErrors": []}

    def orderUpdate(self, info, input):
        state: RequestState = info.context
        order_id = self._existing_order(state, input.get("id"))
        if order_id is None:
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        current = state.annotations.get(order_id)
        tags = _clean_tags(input["tags"]) if input.get("tags") is not None else (list(current.tags) if current else [])
        note = input["note"] if "note" in input else (current.note if current else None)
        self.app.annotate(order_id, tags=tags, note=note)
        fresh = RequestState(self.app, state.now)
        return {"order": fresh.orders_by_id([order_id]).get(order_id), "userErrors": []}

    @staticmethod
    def _existing_order(state: RequestState, value) -> int | None:
        found = parse_gid(value or "")
        if not found or found[0] != "Order":
            return None
        exists = state.orders_view.filter(pl.col("order_id") == found[1]).height > 0
        return found[1] if exists else None


def _clean_tags(tags) -> list[str]:
    """Shopify tags: trimmed, comma-split, no blanks, no case-insensitive repeats."""
    out: list[str] = []
    seen: set[str] = set()
    for tag in tags or []:
        for part in str(tag).split(","):
            part = part.strip()[:255]
            if part and part.lower() not in seen:
                seen.add(part.lower())
                out.append(part)
    return out


# ---------------------------------------------------------------- the emulator


class ShopifyEmulator:
    """The shop: its cost bucket, bulk operations and write-backs, around one SandboxContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.bucket = LeakyBucket(BUCKET_SIZE, RESTORE_RATE, ctx.throttle)
        self.root = Root(self)
        self.bulk = BulkOperations(ctx, SCHEMA, self._execute_bulk)

    # ---- write-backs
    def annotations(self) -> dict[int, Annotation]:
        out = {}
        for written in self.ctx.store.all("shopify", "order_annotation"):
            payload = written.payload
            out[int(written.record_id)] = Annotation(payload.get("tags") or [], payload.get("note"), parse_instant(written.updated_at))
        return out

    def annotate(self, order_id: int, tags: list[str], note: str | None) -> None:
        """Keep a tag or note write-back; the order's updatedAt becomes the sandbox now."""
        self.ctx.store.put("shopify", "order_annotation", str(order_id), {"tags": tags, "note": note}, at=self.ctx.now())

    # ---- execution
    def _execute_bulk(self, document, now: datetime, window: BulkWindow) -> ExecutionResult:
        return execute(SCHEMA, document, root_value=self.root, context_value=RequestState(self, now, bulk=window))

    def cost_extension(self, requested: int, actual: int | None) -> dict:
        """The extensions.cost block every response carries."""
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": BUCKET_SIZE,
                    "currentlyAvailable": int(self.bucket.available()),
                    "restoreRate": float(self.bucket.restore_rate),
                },
            }
        }

    def handle(self, body: dict) -> dict:
        """Run one GraphQL request body and return the response body (always HTTP 200)."""
        query = body.get("query")
        variables = body.get("variables") or {}
        operation_name = body.get("operationName")
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {"errors": [_shopify_error(exc)], "extensions": self.cost_extension(0, 0)}
        problems = validate(SCHEMA, document)
        if problems:
            return {"errors": [_shopify_error(e) for e in problems], "extensions": self.cost_extension(0, 0)}
        requested = requested_cost(SCHEMA, document, operation_name, variables)
        if requested > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": (
                            f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
                            "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
                            "cost of a query is calculated.\n\n"
                            "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
                            "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
                        ),
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
                    }
                ],
                "extensions": self.cost_extension(requested, None),
            }
        admitted, _wait = self.bucket.try_pour(requested)
        if not admitted:
            return _throttled_body(self.cost_extension(requested, None))
        state = RequestState(self, self.ctx.now())
        result = execute(
            SCHEMA, document, root_value=self.root, context_value=state,
            variable_values=variables, operation_name=operation_name,
        )
        actual = actual_cost(SCHEMA, document, operation_name, variables, result.data)
        if actual < requested:
            self.bucket.refund(requested - actual)
        out: dict = {}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        out["data"] = result.data
        out["extensions"] = self.cost_extension(requested, actual)
        return out

    # ---- HTTP
    async def graphql_endpoint(self, request: Request) -> Response:
        token = request.headers.get("x-shopify-access-token")
        if token != self.ctx.credentials.shopify_access_token:
            return JSONResponse({"errors": AUTH_ERROR}, status_code=401)
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
        answer = await run_in_threadpool(self.handle, body)
        return JSONResponse(answer)

    async def bulk_results(self, request: Request) -> Response:
        name = request.path_params["name"]
        match = re.fullmatch(r"(\d+)\.jsonl", name)
        record = self.bulk.get(int(match.group(1))) if match else None
        if record is None or record.status != "COMPLETED" or not self.bulk.path(record.id).exists():
            return Response("<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        return FileResponse(self.bulk.path(record.id), media_type="application/jsonl")


def _shopify_error(error: GraphQLError) -> dict:
    """A graphql-core error in the shape and wording Shopify's GraphQL server uses."""
    formatted = dict(error.formatted)
    message = error.message
    patterns = [
        (r"Cannot query field '([^']+)' on type '([^']+)'\..*",
         lambda m: (f"Field '{m[1]}' doesn't exist on type '{m[2]}'", {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]})),
        (r"Unknown argument '([^']+)' on field '([^'.]+)\.([^']+)'\..*",
         lambda m: (f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
                    {"code": "argumentNotAccepted", "name": m[3], "typeName": "Field", "argumentName": m[1]})),
        (r"Field '([^']+)' argument '([^']+)' of type '([^']+)' is required, but it was not provided\.",
         lambda m: (f"Field '{m[1]}' is missing required arguments: {m[2]}",
                    {"code": "missingRequiredArguments", "className": "Field", "name": m[1], "arguments": m[2]})),
        (r"Syntax Error: (.*)", lambda m: (f"Parse error: {m[1]}", {"code": "parseError"})),
    ]
    for pattern, rewrite in patterns:
        matched = re.fullmatch(pattern, message, flags=re.S)
        if matched:
            formatted["message"], formatted["extensions"] = rewrite(matched)
            break
    else:
        formatted.setdefault("extensions", {"code": "validationError"})
    return formatted


def _throttled_body(extensions: dict) -> dict:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS}}],
        "extensions": extensions,
    }


# ---------------------------------------------------------------- module contract


def build(ctx) -> Starlette:
    """The Shopify app, mounted by the sandbox server at /shopify."""
    emulator = ShopifyEmulator(ctx)
    app = Starlette(
        routes=[
            Route("/admin/api/{version}/graphql.json", emulator.graphql_endpoint, methods=["POST"]),
            Route("/_sandbox/bulk-results/{name}", emulator.bulk_results, methods=["GET"]),
        ]
    )
    app.state.emulator = emulator
    return app


def throttled(retry_after: float, time_scale: float = 1.0) -> Response:
    """Shopify GraphQL's throttle answer: HTTP 200, a THROTTLED error and the cost block.

    The cost block is set so a client computing (requested - available) / restoreRate waits
    ``retry_after`` seconds; the restore rate is the bucket's real one (scaled with the limits),
    so a client that learns from it paces as the real bucket allows.
    """
    restore = RESTORE_RATE * time_scale
    requested = max(1, round(retry_after * restore))
    body = _throttled_body(
        {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": BUCKET_SIZE, "currentlyAvailable": 0, "restoreRate": restore},
            }
        }
    )
    return JSONResponse(body, status_code=200)


def server_error(status: int) -> Response:
    """A Shopify-style 5xx: JSON ``errors`` text as the storefront edge returns it."""
    messages = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    return JSONResponse({"errors": messages.get(status, "Internal Server Error")}, status_code=status)
