"""An independent audit of a generated world: every exception the default rules would raise.

It reads the world tables directly (not through the emulators) and applies the rules of
CONTRACTS.md with the default thresholds, so the generator's ground truth can be checked both
ways: every injected discrepancy is found, and nothing else is.

Precedence, as the generator documents it: an order with no shipment at all is unfulfilled;
a cancelled order that ships is only shipped-after-cancellation; what a shipment holds is
judged once the order's SLA has passed.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from connectors.sandbox.generator.calendar import add_business_days
from connectors.sandbox.generator.catalog import at
from connectors.sandbox.generator.simulation import fba_fee, shopify_fee

SLA_BUSINESS_DAYS = 3
NO_SCAN_BUSINESS_DAYS = 3
LOST_BUSINESS_DAYS = {"USPS": 7, "UPS": 5, "FedEx": 7}
SHOPIFY_SETTLE_DAYS = 7
AMAZON_SETTLE_DAYS = 21
DEPOSIT_BUSINESS_DAYS = 3
INVOICE_DAYS = 2

Key = tuple  # (exception_type, channel, channel_order_id, sku, reference)


def _past_business(instant: datetime, days: int, now: datetime) -> bool:
    return at(add_business_days(instant.date(), days), 23, 59) < now


def audit(world, now: datetime) -> set[Key]:
    found: set[Key] = set()
    orders = world.orders.filter(pl.col("created_at") <= now)
    order_by_key = {r["order_key"]: r for r in orders.iter_rows(named=True)}
    variants = world.variants
    bundles: dict[str, list[tuple[str, int]]] = {}
    for r in world.bundle_components.iter_rows(named=True):
        bundles.setdefault(r["bundle_sku"], []).append((r["component_sku"], r["quantity"]))
    lines = world.order_lines.filter(pl.col("added_at") <= now)
    refunds = world.refunds.filter(pl.col("created_at") <= now)
    shipments = world.shipments.filter(pl.col("shipped_at") <= now)
    ship_lines = world.shipment_lines.join(shipments.select("shipment_id", "order_key", "shipped_at"), on="shipment_id")

    def key(exception_type, order, sku=None, reference=None):
        return (exception_type, order["channel"], order["channel_order_id"], sku, reference)

    # ---- fulfilment
    ordered: dict[int, dict[str, int]] = {}
    for r in lines.iter_rows(named=True):
        parts = bundles.get(r["sku"], [(r["sku"], 1)])
        for sku, q in parts:
            ordered.setdefault(r["order_key"], {}).setdefault(sku, 0)
            ordered[r["order_key"]][sku] += q * r["quantity"]
    shipped: dict[int, dict[str, list]] = {}
    for r in ship_lines.sort("shipped_at", "shipment_id").iter_rows(named=True):
        entry = shipped.setdefault(r["order_key"], {}).setdefault(r["sku"], [0, None])
        entry[0] += r["quantity"]
        entry[1] = r["shipment_id"]
    first_ship = {r["order_key"]: r for r in shipments.sort("shipped_at").unique("order_key", keep="first").iter_rows(named=True)}
    for order in order_by_key.values():
        if order["shipbob_order_id"] is None:
            continue
        cancelled = order["cancelled_at"] is not None and order["cancelled_at"] <= now
        got = shipped.get(order["order_key"], {})
        if cancelled:
            if got:
                found.add(key("shipped_after_cancellation", order, None, str(first_ship[order["order_key"]]["shipment_id"])))
            continue
        if not got:
            if _past_business(order["created_at"], SLA_BUSINESS_DAYS, now):
                found.add(key("unfulfilled_past_sla", order))
            continue
        if not _past_business(order["created_at"], SLA_BUSINESS_DAYS, now):
            continue
        want = ordered.get(order["order_key"], {})
        for sku, qty in want.items():
            sent = got.get(sku, [0, None])[0]
            if sent < qty:
                last = max(got.values(), key=lambda e: e[1])[1]
                found.add(key("short_shipped", order, sku, str(last)))
        for sku, (sent, last) in got.items():
            if sku not in want:
                found.add(key("wrong_item_shipped", order, sku, str(last)))
            elif sent > want[sku]:
                found.add(key("over_shipped", order, sku, str(last)))

    # ---- carriers
    trackers = world.trackers.filter(pl.col("created_at") <= now).join(
        world.shipments.select("shipment_id", "order_key"), on="shipment_id")
    events = world.tracking_events.filter(pl.col("occurred_at") <= now).sort("tracking_code", "seq")
    last_event = events.group_by("tracking_code").agg(pl.col("status").last(), pl.col("occurred_at").last(),
                                                      (pl.col("status") != "pre_transit").sum().alias("scans"))
    for r in trackers.join(last_event, on="tracking_code", how="left").iter_rows(named=True):
        order = order_by_key[r["order_key"]]
        if r["status"] in ("return_to_sender", "failure"):
            found.add(key("returned_to_sender", order, None, r["tracking_code"]))
        elif not r["scans"]:
            if _past_business(r["created_at"], NO_SCAN_BUSINESS_DAYS, now):
                found.add(key("no_carrier_scan", order, None, r["tracking_code"]))
        elif r["status"] != "delivered" and _past_business(r["occurred_at"], LOST_BUSINESS_DAYS[r["carrier"]], now):
            found.add(key("lost_in_transit", order, None, r["tracking_code"]))

    # ---- Shopify Payments
    payouts = world.payouts.filter(pl.col("created_at") <= now)
    bts = world.balance_transactions.filter(pl.col("payout_id").is_in(payouts["payout_id"].implode()))
    txns = world.order_transactions.filter(pl.col("processed_at") <= now)
    bt_by_txn = {r["source_order_transaction_id"]: r for r in bts.iter_rows(named=True) if r["source_order_transaction_id"]}
    shopify_orders = {o["order_key"]: o for o in order_by_key.values() if o["channel"] == "shopify"}
    for t in txns.iter_rows(named=True):
        order = shopify_orders[t["order_key"]]
        bt = bt_by_txn.get(t["transaction_id"])
        if bt is None:
            if t["processed_at"] + timedelta(days=SHOPIFY_SETTLE_DAYS) < now:
                found.add(key("payment_not_settled" if t["kind"] == "sale" else "refund_not_settled", order))
            continue
        if t["kind"] != "sale":
            continue
        if bt["amount_cents"] != t["amount_cents"]:
            found.add(key("settlement_amount_mismatch", order, None, str(bt["payout_id"])))
        intl = order["presentment_currency"] != order["currency"]
        if bt["fee_cents"] != shopify_fee(bt["amount_cents"], intl):
            found.add(key("fee_anomaly", order, None, str(bt["payout_id"])))
    order_by_channel_id = {o["channel_order_id"]: o for o in order_by_key.values()}
    for bt in bts.filter(pl.col("type") == "dispute").iter_rows(named=True):
        found.add(key("chargeback", order_by_channel_id[str(bt["source_order_id"])], None, str(bt["payout_id"])))

    # ---- Amazon settlements
    settlements = world.settlements.filter(pl.col("report_created_at") <= now)
    sl = world.settlement_lines.filter(pl.col("settlement_id").is_in(settlements["settlement_id"].implode()))
    weight = dict(zip(variants["sku"], variants["weight_grams"]))
    rate = dict(zip(variants["sku"], variants["referral_rate_bp"]))
    settled_orders = set(sl.filter(pl.col("transaction_type") == "Order")["order_id"].to_list())
    for order in order_by_key.values():
        if order["channel"] != "amazon" or order["amazon_shipped_at"] is None or order["amazon_shipped_at"] > now:
            continue
        if order["channel_order_id"] not in settled_orders and order["amazon_shipped_at"] + timedelta(days=AMAZON_SETTLE_DAYS) < now:
            found.add(key("payment_not_settled", order))
    order_rows = sl.filter(pl.col("transaction_type") == "Order")
    revenue = order_rows.filter(pl.col("amount_type").is_in(["ItemPrice", "Promotion"])).group_by("order_id", "settlement_id").agg(pl.col("amount_cents").sum())
    for r in revenue.iter_rows(named=True):
        order = order_by_channel_id[r["order_id"]]
        if r["amount_cents"] != order["total_cents"]:
            found.add(key("settlement_amount_mismatch", order, None, str(r["settlement_id"])))
    items = order_rows.group_by("settlement_id", "order_id", "order_item_code", "sku").agg(
        pl.col("amount_cents").filter((pl.col("amount_type") == "ItemPrice") & (pl.col("amount_description") == "Principal")).sum().alias("principal"),
        pl.col("amount_cents").filter(pl.col("amount_type") == "Promotion").sum().alias("promotion"),
        pl.col("amount_cents").filter(pl.col("amount_description") == "Commission").sum().alias("commission"),
        pl.col("amount_cents").filter(pl.col("amount_description") == "FBAPerUnitFulfillmentFee").sum().alias("fba"),
        pl.col("quantity_purchased").max().alias("qty"), pl.col("fulfillment_id").first())
    for r in items.iter_rows(named=True):
        order = order_by_channel_id[r["order_id"]]
        expected_commission = int((r["principal"] + r["promotion"]) * rate[r["sku"]] / 10000 + 0.5)
        expected_fba = fba_fee(weight[r["sku"]]) * r["qty"] if r["fulfillment_id"] == "AFN" else 0
        if -r["commission"] != expected_commission or -r["fba"] != expected_fba:
            found.add(key("fee_anomaly", order, r["sku"], str(r["settlement_id"])))
    for r in sl.filter(pl.col("transaction_type") == "Chargeback Refund").unique(["order_id", "settlement_id"]).iter_rows(named=True):
        found.add(key("chargeback", order_by_channel_id[r["order_id"]], None, str(r["settlement_id"])))

    # ---- deposits in the books
    bank = world.bank_transactions.filter(pl.col("created_at") <= now)
    booked = {r["payout_reference"]: (r["amount_cents"] if r["type"] == "RECEIVE" else -r["amount_cents"]) for r in bank.iter_rows(named=True)}
    for r in payouts.filter(pl.col("paid_at") <= now).iter_rows(named=True):
        if _past_business(r["paid_at"], DEPOSIT_BUSINESS_DAYS, now) and booked.get(str(r["payout_id"])) != r["amount_cents"]:
            found.add(("payout_not_deposited", "shopify", None, None, str(r["payout_id"])))
    for r in world.settlements.filter(pl.col("deposit_at") <= now).iter_rows(named=True):
        if _past_business(r["deposit_at"], DEPOSIT_BUSINESS_DAYS, now) and booked.get(str(r["settlement_id"])) != r["total_cents"]:
            found.add(("payout_not_deposited", "amazon", None, None, str(r["settlement_id"])))

    # ---- invoices
    invoices = world.invoices.filter(pl.col("created_at") <= now)
    live = invoices.filter(pl.col("voided_at").is_null() | (pl.col("voided_at") > now)).sort("created_at", "invoice_number")
    by_order: dict[int, list] = {}
    for r in live.iter_rows(named=True):
        by_order.setdefault(r["order_key"], []).append(r)
    edits = lines.join(orders.select("order_key", "created_at"), on="order_key").filter(pl.col("added_at") > pl.col("created_at"))
    extra = {r["order_key"]: r["amount"] for r in edits.group_by("order_key").agg(
        (pl.col("unit_price_cents") * pl.col("quantity") - pl.col("discount_cents") + pl.col("tax_cents")).sum().alias("amount")).iter_rows(named=True)}
    for order in order_by_key.values():
        cancelled = order["cancelled_at"] is not None and order["cancelled_at"] <= now
        if cancelled:
            continue
        if order["channel"] == "shopify":
            first = first_ship.get(order["order_key"])
            shipped_at = first["shipped_at"] if first else None
        else:
            shipped_at = order["amazon_shipped_at"] if order["amazon_shipped_at"] and order["amazon_shipped_at"] <= now else None
        found_invoices = by_order.get(order["order_key"], [])
        if shipped_at is None:
            continue
        if not found_invoices:
            if shipped_at + timedelta(days=INVOICE_DAYS) < now:
                found.add(key("not_invoiced", order))
            continue
        expected = order["total_cents"] + extra.get(order["order_key"], 0)
        before = refunds.filter((pl.col("order_key") == order["order_key"]) & (pl.col("created_at") < found_invoices[0]["created_at"]))
        expected -= int(before["amount_cents"].sum()) if before.height else 0
        if found_invoices[0]["total_cents"] != expected:
            found.add(key("invoice_amount_mismatch", order, None, found_invoices[0]["invoice_number"]))
        for dup in found_invoices[1:]:
            found.add(key("duplicate_invoice", order, None, dup["invoice_number"]))

    # ---- inventory and purchasing
    inventory = world.inventory_daily.filter(pl.col("date") < now.date())
    if inventory.height:
        latest = inventory.filter(pl.col("date") == inventory["date"].max())
        for r in latest.filter(pl.col("shopify_available") != pl.col("fulfillable")).iter_rows(named=True):
            found.add(("inventory_mismatch", None, None, r["sku"], None))
    wros = world.receiving_orders.filter(pl.col("completed_at") <= now)
    for r in world.receiving_lines.join(wros.select("wro_id", "po_number"), on="wro_id").filter(
            pl.col("received_quantity") != pl.col("expected_quantity")).iter_rows(named=True):
        found.add(("po_receipt_mismatch", None, None, r["sku"], r["po_number"]))
    return found


def truth_keys(world, now: datetime | None = None) -> set[Key]:
    truth = world.truth
    if now is not None:
        truth = truth.filter(pl.col("detectable_at") <= now)
    return {tuple(r) for r in truth.select("exception_type", "channel", "channel_order_id", "sku", "reference").iter_rows()}
