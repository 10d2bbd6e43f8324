"""The Shopify view of the world as of the clock: derived polars frames, search filters, cursors.

Every frame here is built for one instant ``now`` and memoised with ``ctx.cached`` under a key
that carries ``now``, so a bulk operation that started before a clock move keeps reading the
world as it was when it started.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
from graphql import GraphQLError

from ..world import SHOP_TIMEZONE

MAX_PAGE = 250
SHOP_ZONE = ZoneInfo(SHOP_TIMEZONE)
UTC = timezone.utc


# ---------------------------------------------------------------- frames as of now


def cached_frame(ctx, name: str, now: datetime, build):
    """Memoise ``build()`` for ``now``.

    ``ctx.cached`` gives a holder that is replaced when the clock moves, so old frames are let go;
    inside it frames are keyed by ``now`` because a bulk run keeps reading at its start instant.
    """
    holder: dict = ctx.cached(("shopify", name), dict)
    key = now.isoformat()
    with ctx.cache_lock:
        hit = holder.get(key)
    if hit is not None:
        return hit
    value = build()
    with ctx.cache_lock:
        while len(holder) >= 3:
            holder.pop(next(iter(holder)))
        holder[key] = value
    return value


def _upto(column: str, now: datetime) -> pl.Expr:
    return pl.col(column).is_not_null() & (pl.col(column) <= now)


def shopify_orders(ctx, now: datetime) -> pl.DataFrame:
    """Shopify orders that exist at ``now`` with their derived state (status, updated time, money).

    ``updated_at`` here leaves out client writes (tags, notes): those are merged per request by
    :func:`with_annotations` because they change without the clock moving.
    """

    def build() -> pl.DataFrame:
        world = ctx.world
        orders = world.table("orders").filter(
            (pl.col("channel") == "shopify") & (pl.col("created_at") <= now)
        )
        orders = orders.with_columns(pl.col("channel_order_id").cast(pl.Int64).alias("order_id"))
        keys = orders.select("order_key", "created_at")
        lines = (
            world.table("order_lines")
            .filter(_upto("added_at", now))
            .join(keys, on="order_key", how="inner")
        )
        tx = world.table("order_transactions").filter(_upto("processed_at", now)).join(
            keys.select("order_key"), on="order_key", how="semi"
        )
        refunds = world.table("refunds").filter(_upto("created_at", now)).join(
            keys.select("order_key"), on="order_key", how="semi"
        )
        refund_lines = world.table("refund_lines").join(refunds.select("refund_id"), on="refund_id", how="semi")
        shipments = fulfilled_shipments(ctx, now)

        events = pl.concat(
            [
                orders.select("order_key", pl.col("created_at").alias("at")),
                orders.select("order_key", pl.col("cancelled_at").alias("at")),
                orders.select("order_key", pl.col("closed_at").alias("at")),
                lines.select("order_key", pl.col("added_at").alias("at")),
                tx.select("order_key", pl.col("processed_at").alias("at")),
                refunds.select("order_key", pl.col("created_at").alias("at")),
                shipments.select("order_key", pl.col("shipped_at").alias("at")),
                # a delivery updates the fulfillment (deliveredAt, displayStatus), and with it the order
                shipments.select("order_key", pl.col("tracking_number").replace_strict(
                    delivered_at(ctx, now), default=None, return_dtype=pl.Datetime("us", "UTC")).alias("at")),
            ]
        ).filter(_upto("at", now))
        updated = events.group_by("order_key").agg(pl.col("at").max().alias("updated_at"))

        # lines added by later edits change the order totals
        added = (
            lines.filter(pl.col("added_at") > pl.col("created_at"))
            .group_by("order_key")
            .agg(
                (pl.col("quantity") * pl.col("unit_price_cents") - pl.col("discount_cents")).sum().alias("edit_subtotal_cents"),
                pl.col("tax_cents").sum().alias("edit_tax_cents"),
            )
        )
        quantities = lines.group_by("order_key").agg(pl.col("quantity").sum().alias("line_quantity"))
        refunded_units = (
            refund_lines.join(refunds.select("refund_id", "order_key"), on="refund_id")
            .group_by("order_key")
            .agg(pl.col("quantity").sum().alias("refunded_quantity"))
        )
        paid = tx.group_by("order_key").agg(
            pl.col("amount_cents").filter(pl.col("kind").is_in(["sale", "capture"]) & (pl.col("status") == "success")).sum().alias("paid_cents"),
            pl.col("amount_cents").filter((pl.col("kind") == "refund") & (pl.col("status") == "success")).sum().alias("refund_tx_cents"),
        )
        refunded = refunds.group_by("order_key").agg(
            pl.col("amount_cents").sum().alias("refunded_cents"),
            pl.col("tax_cents").sum().alias("refunded_tax_cents"),
            pl.col("shipping_cents").sum().alias("refunded_shipping_cents"),
        )
        required = _units_required(ctx, lines, refund_lines)
        shipped = (
            shipments.join(ctx.world.table("shipment_lines"), on="shipment_id")
            .group_by("order_key")
            .agg(pl.col("quantity").sum().alias("shipped_units"))
        )

        view = orders
        for part in (updated, added, quantities, refunded_units, paid, refunded, required, shipped):
            view = view.join(part, on="order_key", how="left")
        zero = [
            "edit_subtotal_cents", "edit_tax_cents", "line_quantity", "refunded_quantity", "paid_cents",
            "refund_tx_cents", "refunded_cents", "refunded_tax_cents", "refunded_shipping_cents",
            "required_units", "shipped_units",
        ]
        view = view.with_columns([pl.col(c).fill_null(0) for c in zero])
        cancelled = pl.col("cancelled_at").is_not_null() & (pl.col("cancelled_at") <= now)
        closed = pl.col("closed_at").is_not_null() & (pl.col("closed_at") <= now)
        view = view.with_columns(
            pl.when(cancelled).then(pl.col("cancelled_at")).otherwise(None).alias("cancelled_at"),
            pl.when(cancelled).then(pl.col("cancel_reason")).otherwise(None).alias("cancel_reason"),
            pl.when(closed).then(pl.col("closed_at")).otherwise(None).alias("closed_at"),
            (pl.col("subtotal_cents") + pl.col("edit_subtotal_cents")).alias("order_subtotal_cents"),
            (pl.col("total_tax_cents") + pl.col("edit_tax_cents")).alias("order_tax_cents"),
            (pl.col("total_cents") + pl.col("edit_subtotal_cents") + pl.col("edit_tax_cents")).alias("order_total_cents"),
        )
        view = view.with_columns(
            pl.when(pl.col("paid_cents") == 0)
            .then(pl.when(pl.col("cancelled_at").is_not_null()).then(pl.lit("VOIDED")).otherwise(pl.lit("PENDING")))
            .when(pl.col("refunded_cents") >= pl.col("paid_cents"))
            .then(pl.lit("REFUNDED"))
            .when(pl.col("refunded_cents") > 0)
            .then(pl.lit("PARTIALLY_REFUNDED"))
            .when(pl.col("paid_cents") < pl.col("order_total_cents"))
            .then(pl.lit("PARTIALLY_PAID"))
            .otherwise(pl.lit("PAID"))
            .alias("financial_status"),
            pl.when(pl.col("shipped_units") == 0)
            .then(pl.lit("UNFULFILLED"))
            .when(pl.col("shipped_units") >= pl.col("required_units"))
            .then(pl.lit("FULFILLED"))
            .otherwise(pl.lit("PARTIALLY_FULFILLED"))
            .alias("fulfillment_status"),
            pl.col("created_at").alias("processed_at"),
            pl.when(pl.col("cancelled_at").is_not_null())
            .then(pl.lit("CANCELLED"))
            .when(pl.col("closed_at").is_not_null())
            .then(pl.lit("CLOSED"))
            .otherwise(pl.lit("OPEN"))
            .alias("order_status"),
        )
        return view.sort("order_id")

    return cached_frame(ctx, "orders", now, build)


def _units_required(ctx, lines: pl.DataFrame, refund_lines: pl.DataFrame) -> pl.DataFrame:
    """Physical units each order must ship: bundles count as their components, refunds reduce it."""
    refunded = refund_lines.group_by("line_id").agg(pl.col("quantity").sum().alias("refunded"))
    open_lines = lines.join(refunded, on="line_id", how="left").with_columns(
        (pl.col("quantity") - pl.col("refunded").fill_null(0)).clip(lower_bound=0).alias("open_quantity")
    )
    components = ctx.world.table("bundle_components").group_by("bundle_sku").agg(
        pl.col("quantity").sum().alias("units_per_bundle")
    )
    expanded = open_lines.join(components, left_on="sku", right_on="bundle_sku", how="left").with_columns(
        (pl.col("open_quantity") * pl.col("units_per_bundle").fill_null(1)).alias("units")
    )
    return expanded.group_by("order_key").agg(pl.col("units").sum().alias("required_units"))


def fulfilled_shipments(ctx, now: datetime) -> pl.DataFrame:
    """Shipments Shopify knows as fulfillments at ``now`` (a fulfillment id and shipped)."""

    def build() -> pl.DataFrame:
        return ctx.world.table("shipments").filter(
            pl.col("shopify_fulfillment_id").is_not_null() & _upto("shipped_at", now)
        )

    return cached_frame(ctx, "fulfilled_shipments", now, build)


def delivered_at(ctx, now: datetime) -> dict[str, datetime]:
    """Tracking code -> first 'delivered' scan at or before ``now``."""

    def build() -> dict[str, datetime]:
        events = ctx.world.table("tracking_events").filter(
            (pl.col("status") == "delivered") & _upto("occurred_at", now)
        )
        grouped = events.group_by("tracking_code").agg(pl.col("occurred_at").min())
        return dict(zip(grouped["tracking_code"].to_list(), grouped["occurred_at"].to_list()))

    return cached_frame(ctx, "delivered", now, build)


def with_annotations(view: pl.DataFrame, annotations: dict, now: datetime) -> pl.DataFrame:
    """Fold client writes (tags, note) into the orders view: a write is an event that updates the order."""
    live = {oid: a for oid, a in annotations.items() if a.at <= now}
    if not live:
        return view.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("tags"))
    frame = pl.DataFrame(
        {
            "order_id": list(live),
            "annotated_at": [a.at for a in live.values()],
            "tags": [[t.lower() for t in a.tags] for a in live.values()],
        },
        schema={"order_id": pl.Int64, "annotated_at": pl.Datetime("us", "UTC"), "tags": pl.List(pl.String)},
    )
    return (
        view.join(frame, on="order_id", how="left")
        .with_columns(pl.max_horizontal("updated_at", "annotated_at").alias("updated_at"))
        .drop("annotated_at")
    )


def shopify_products(ctx, now: datetime) -> pl.DataFrame:
    """Products that exist at ``now`` with status and updated time from the events so far."""

    def build() -> pl.DataFrame:
        products = ctx.world.table("products").filter(pl.col("created_at") <= now)
        stamps = [
            pl.when(_upto(c, now)).then(pl.col(c)).otherwise(None)
            for c in ("created_at", "updated_at", "launched_at", "discontinued_at")
        ]
        return products.with_columns(
            pl.max_horizontal(*stamps).alias("updated_at"),
            pl.when(_upto("discontinued_at", now))
            .then(pl.lit("ARCHIVED"))
            .when(_upto("launched_at", now))
            .then(pl.lit("ACTIVE"))
            .otherwise(pl.lit("DRAFT"))
            .alias("status"),
            pl.when(_upto("launched_at", now)).then(pl.col("launched_at")).otherwise(None).alias("published_at"),
        ).sort("product_id")

    return cached_frame(ctx, "products", now, build)


def shopify_variants(ctx, now: datetime) -> pl.DataFrame:
    """Variants that exist at ``now``; updated time is the last change at or before now."""

    def build() -> pl.DataFrame:
        variants = ctx.world.table("variants").filter(pl.col("created_at") <= now)
        return variants.with_columns(
            pl.max_horizontal(
                "created_at", pl.when(_upto("updated_at", now)).then(pl.col("updated_at")).otherwise(None)
            ).alias("updated_at"),
            (pl.col("variant_id").rank("ordinal").over("product_id")).cast(pl.Int64).alias("position"),
        ).sort("variant_id")

    return cached_frame(ctx, "variants", now, build)


@dataclass(frozen=True)
class StockLevel:
    available: int
    on_hand: int
    committed: int
    incoming: int
    as_of: datetime  # the end of the day the numbers describe


def inventory_levels(ctx, now: datetime) -> dict[str, StockLevel]:
    """SKU -> stock of the latest day strictly before now's date (yesterday's close)."""

    def build() -> dict[str, StockLevel]:
        daily = ctx.world.table("inventory_daily").filter(pl.col("date") < now.date())
        if daily.is_empty():
            return {}
        last = daily["date"].max()
        day = daily.filter(pl.col("date") == last)
        stamp = datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC)
        return {
            row["sku"]: StockLevel(
                row["shopify_available"], row["on_hand"], row["committed"], row["awaiting"], min(stamp, now)
            )
            for row in day.iter_rows(named=True)
        }

    return cached_frame(ctx, "inventory", now, build)


def shopify_payouts(ctx, now: datetime) -> pl.DataFrame:
    """Payouts scheduled by ``now``; PAID once paid_at has passed."""

    def build() -> pl.DataFrame:
        payouts = ctx.world.table("payouts").filter(pl.col("created_at") <= now)
        return payouts.with_columns(
            pl.when(_upto("paid_at", now)).then(pl.lit("PAID")).otherwise(pl.lit("SCHEDULED")).alias("status"),
            pl.col("created_at").alias("updated_at"),
        ).sort("payout_id")

    return cached_frame(ctx, "payouts", now, build)


def shopify_balance_transactions(ctx, now: datetime) -> pl.DataFrame:
    """Balance transactions processed by ``now``; the payout link appears at the payout's creation."""

    def build() -> pl.DataFrame:
        bt = ctx.world.table("balance_transactions").filter(pl.col("processed_at") <= now)
        payouts = shopify_payouts(ctx, now).select(
            pl.col("payout_id").alias("assigned_payout_id"),
            pl.col("status").alias("payout_status"),
            pl.col("payout_date"),
        )
        bt = bt.join(payouts, left_on="payout_id", right_on="assigned_payout_id", how="left")
        amount = pl.col("amount_cents")
        kind = pl.col("type")
        return bt.with_columns(
            pl.when(pl.col("payout_status").is_not_null()).then(pl.col("payout_id")).otherwise(None).alias("payout_id"),
            pl.col("payout_status").fill_null("PENDING"),
            pl.when(kind == "charge").then(pl.lit("CHARGE"))
            .when(kind == "refund").then(pl.lit("REFUND"))
            .when(kind == "payout").then(pl.lit("TRANSFER"))
            .when(kind == "dispute").then(pl.when(amount < 0).then(pl.lit("DISPUTE_WITHDRAWAL")).otherwise(pl.lit("DISPUTE_REVERSAL")))
            .when(kind == "reserve").then(
                pl.when(amount < 0).then(pl.lit("RESERVED_FUNDS_WITHDRAWAL")).otherwise(pl.lit("RESERVED_FUNDS_REVERSAL"))
            )
            .otherwise(pl.lit("ADJUSTMENT"))
            .alias("api_type"),
        ).sort("bt_id")

    return cached_frame(ctx, "balance_transactions", now, build)


def shopify_disputes(ctx, now: datetime) -> pl.DataFrame:
    """Shopify Payments disputes opened by ``now``."""

    def build() -> pl.DataFrame:
        disputes = ctx.world.table("disputes").filter((pl.col("channel") == "shopify") & (pl.col("initiated_at") <= now))
        orders = ctx.world.table("orders").filter(pl.col("channel") == "shopify").select("order_key", pl.col("channel_order_id").cast(pl.Int64).alias("order_id"))
        return disputes.join(orders, on="order_key", how="left").sort("dispute_id")

    return cached_frame(ctx, "disputes", now, build)


# ---------------------------------------------------------------- search syntax


@dataclass(frozen=True)
class SearchField:
    """How one search-syntax field maps to a view column: kind is datetime, date, int, text or enum."""

    column: str
    kind: str


# search values Shopify accepts that differ from the enum the objects show
SEARCH_ALIASES = {
    "shipped": "FULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "unshipped": "UNFULFILLED",
    "canceled": "CANCELLED",
}
_TOKEN = re.compile(r"""(-?[A-Za-z_.]+:(?:<=|>=|<|>|=)?(?:'[^']*'|"[^"]*"|[^\s()]+))|(\S+)""")
_TERM = re.compile(r"""^(-?)([A-Za-z_.]+):(<=|>=|<|>|=)?(.*)$""")


def parse_instant(text: str) -> datetime:
    """A search value as an instant: full ISO-8601, or a bare date taken at midnight in the shop's zone."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=SHOP_ZONE).astimezone(UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHOP_ZONE)
    return value.astimezone(UTC)


def search_filter(query: str | None, fields: dict[str, SearchField], now: datetime) -> pl.Expr | None:
    """Translate Shopify search syntax (``updated_at:>='...' AND status:open``) into a polars filter.

    Terms separated by spaces or AND must all hold; OR joins groups. Unknown fields are ignored,
    as Shopify ignores them (it only adds a search warning).
    """
    if not query or not query.strip():
        return None
    groups: list[list[pl.Expr]] = [[]]
    for match in _TOKEN.finditer(query):
        token = match.group(0)
        upper = token.upper()
        if upper == "AND":
            continue
        if upper == "OR":
            groups.append([])
            continue
        term = _TERM.match(token)
        if not term:
            continue  # free text: the sandbox has nothing to match it against
        negate, name, op, raw = term.groups()
        field = fields.get(name.lower())
        if field is None:
            continue
        value = raw.strip().strip("'\"")
        expr = _term_expr(field, op or "=", value, now)
        if expr is None:
            continue
        groups[-1].append(~expr if negate else expr)
    exprs = [pl.all_horizontal(g) for g in groups if g]
    if not exprs:
        return None
    return pl.any_horizontal(exprs) if len(exprs) > 1 else exprs[0]


def _compare(column: pl.Expr, op: str, value) -> pl.Expr:
    return {
        "=": column == value,
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
    }[op]


def _term_expr(field: SearchField, op: str, value: str, now: datetime) -> pl.Expr | None:
    col = pl.col(field.column)
    try:
        if field.kind == "datetime":
            if op == "=" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                start = parse_instant(value)
                return (col >= start) & (col < start + timedelta(days=1))
            return _compare(col, op, parse_instant(value))
        if field.kind == "date":
            return _compare(col, op, date.fromisoformat(value[:10]))
        if field.kind == "int":
            number = int(value.rsplit("/", 1)[-1]) if value.startswith("gid://") else int(value)
            return _compare(col, op, number)
        if field.kind == "enum":
            if value.lower() == "any":
                return None
            return col.str.to_uppercase() == SEARCH_ALIASES.get(value.lower(), value.upper())
        if field.kind == "tag":
            return col.list.contains(value.lower()).fill_null(False)
        if field.kind == "text":
            if value.endswith("*"):
                return col.str.starts_with(value[:-1])
            return col == value
    except (ValueError, TypeError):
        raise GraphQLError(f"Invalid search value for {field.column}: {value!r}") from None
    return None


# ---------------------------------------------------------------- cursors and pages


def encode_cursor(sort_value: int, record_id: int) -> str:
    """An opaque cursor: the record's sort key and id."""
    raw = json.dumps([sort_value, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(sort key, id) from a cursor; a cursor we did not issue is a GraphQL error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sort_value, record_id = json.loads(base64.urlsafe_b64decode(padded))
        return int(sort_value), int(record_id)
    except Exception:
        raise GraphQLError(f"Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}) from None


def check_page_size(first: int | None, last: int | None) -> None:
    """Shopify demands first or last, each at most 250."""
    if first is None and last is None:
        raise GraphQLError(
            "you must provide one of first or last", extensions={"code": "BAD_REQUEST"}
        )
    for name, value in (("first", first), ("last", last)):
        if value is not None and (value < 0 or value > MAX_PAGE):
            raise GraphQLError(
                f"The '{name}' argument must be between 0 and {MAX_PAGE}.",
                extensions={"code": "BAD_REQUEST", "argumentName": name, "maxValue": MAX_PAGE},
            )


@dataclass
class Page:
    """One window of a sorted listing: the rows, their cursors and the Relay page info."""

    rows: pl.DataFrame
    cursors: list[str]
    has_next: bool
    has_previous: bool

    def page_info(self) -> dict:
        return {
            "hasNextPage": self.has_next,
            "hasPreviousPage": self.has_previous,
            "startCursor": self.cursors[0] if self.cursors else None,
            "endCursor": self.cursors[-1] if self.cursors else None,
        }


def sort_column(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The sort key as an Int64 (instants and dates in microseconds/days) so cursors stay small."""
    dtype = frame.schema[column]
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        expr = expr.dt.epoch("us")
    elif dtype == pl.Date:
        expr = expr.cast(pl.Int32).cast(pl.Int64)
    elif dtype == pl.String:
        # strings sort by their rank so the cursor stays an integer
        expr = expr.rank("dense")
    return expr.cast(pl.Int64).fill_null(-(2**62))


def sorted_listing(frame: pl.DataFrame, id_column: str, sort_by: str, reverse: bool) -> pl.DataFrame:
    """The listing in page order, with the integer sort key and id the cursors are made of."""
    frame = frame.with_columns(sort_column(frame, sort_by).alias("_sort"), pl.col(id_column).alias("_id"))
    return frame.sort(["_sort", "_id"], descending=reverse)


def page_at(ordered: pl.DataFrame, offset: int, size: int) -> Page:
    """A page of a listing already in page order, by position (bulk runs walk it front to back)."""
    rows = ordered.slice(offset, size)
    cursors = [encode_cursor(a, b) for a, b in zip(rows["_sort"].to_list(), rows["_id"].to_list())]
    return Page(rows.drop("_sort", "_id"), cursors, has_next=offset + rows.height < ordered.height, has_previous=offset > 0)


def paginate(
    frame: pl.DataFrame,
    id_column: str,
    sort_by: str,
    reverse: bool,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    unlimited: bool = False,
) -> Page:
    """Slice a listing the way Relay connections do, ordered by (sort key, id)."""
    if not unlimited:
        check_page_size(first, last)
    frame = sorted_listing(frame, id_column, sort_by, reverse)
    total = frame.height
    start, end = 0, total
    s, i = pl.col("_sort"), pl.col("_id")
    if after:
        v, k = decode_cursor(after)
        upto = ((s > v) | ((s == v) & (i >= k))) if reverse else ((s < v) | ((s == v) & (i <= k)))
        start = int(frame.select(upto.sum()).item())
    if before:
        v, k = decode_cursor(before)
        below = ((s > v) | ((s == v) & (i > k))) if reverse else ((s < v) | ((s == v) & (i < k)))
        end = min(end, int(frame.select(below.sum()).item()))
    end = max(start, end)
    lo, hi = start, end
    if first is not None:
        hi = min(hi, lo + first)
    if last is not None:
        lo = max(lo, hi - last)
    rows = frame.slice(lo, hi - lo)
    cursors = [encode_cursor(a, b) for a, b in zip(rows["_sort"].to_list(), rows["_id"].to_list())]
    return Page(rows.drop("_sort", "_id"), cursors, has_next=hi < total, has_previous=lo > 0)


def paginate_list(items: list[dict], args: dict, unlimited: bool = False) -> dict:
    """A connection over a short in-memory list (children of one record), cursors by position."""
    first, last = args.get("first"), args.get("last")
    if not unlimited:
        check_page_size(first, last)
    ordered = list(reversed(items)) if args.get("reverse") else list(items)
    keyed = [(encode_cursor(n, 0), item) for n, item in enumerate(ordered)]
    lo, hi = 0, len(keyed)
    if args.get("after"):
        lo = decode_cursor(args["after"])[0] + 1
    if args.get("before"):
        hi = min(hi, decode_cursor(args["before"])[0])
    hi = max(lo, hi)
    if first is not None and not unlimited:
        hi = min(hi, lo + first)
    if last is not None and not unlimited:
        lo = max(lo, hi - last)
    window = keyed[lo:hi]
    return connection([c for c, _ in window], [n for _, n in window], hi < len(keyed), lo > 0)


def connection(cursors: list[str], nodes: list[dict], has_next: bool, has_previous: bool) -> dict:
    """The Relay connection shape shared by every list."""
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }
