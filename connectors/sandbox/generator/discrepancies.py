"""Injected discrepancies and the ground truth they leave.

Every exception type of CONTRACTS.md is injected; each injection is written to the ``truth``
table with the key the exception mart must carry and the instant from which the default
rules (``config/rules.yml``) must flag it (``detectable_at``: the rule's threshold plus a
margin, so a clean in-flight record is never confused with an injected one).

The truth key per type (``reference`` is the other system's key):

=============================  =======  ================  ========  ===============================
type                           channel  channel_order_id  sku       reference
=============================  =======  ================  ========  ===============================
unfulfilled_past_sla           yes      yes               -         -
short_shipped                  yes      yes               shipped   ShipBob shipment id
over_shipped                   yes      yes               yes       ShipBob shipment id (the extra)
wrong_item_shipped             yes      yes               wrong     ShipBob shipment id
shipped_after_cancellation     yes      yes               -         ShipBob shipment id
no_carrier_scan                yes      yes               -         tracking number
lost_in_transit                yes      yes               -         tracking number
returned_to_sender             yes      yes               -         tracking number
payment_not_settled            yes      yes               -         -
settlement_amount_mismatch     yes      yes               -         payout id / settlement id
fee_anomaly                    yes      yes               Amazon    payout id / settlement id
refund_not_settled             shopify  yes               -         -
chargeback                     yes      yes               -         payout id / settlement id
payout_not_deposited           yes      -                 -         payout id / settlement id
not_invoiced                   yes      yes               -         -
invoice_amount_mismatch        yes      yes               -         invoice number
duplicate_invoice              yes      yes               -         the duplicate's invoice number
inventory_mismatch             -        -                 yes       -
po_receipt_mismatch            -        -                 yes       PO number
=============================  =======  ================  ========  ===============================

What an injection implies and what it does not: a wrong item shipped leaves the ordered SKU
short as well (two truth rows); a cancelled order that ships anyway is only
``shipped_after_cancellation`` (not over-shipped, and cancelled orders are never invoiced);
an order never shipped is only ``unfulfilled_past_sla``. The rest of the world is clean:
normal delays stay inside the default thresholds.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from .calendar import add_business_days, is_business_day
from .catalog import at

ORDER_TYPES = (
    "unfulfilled_past_sla", "short_shipped", "over_shipped", "wrong_item_shipped", "shipped_after_cancellation",
    "no_carrier_scan", "lost_in_transit", "returned_to_sender", "payment_not_settled", "settlement_amount_mismatch",
    "fee_anomaly", "refund_not_settled", "chargeback", "not_invoiced", "invoice_amount_mismatch", "duplicate_invoice",
)
MERCHANT_ONLY = {"unfulfilled_past_sla", "short_shipped", "over_shipped", "wrong_item_shipped",
                 "shipped_after_cancellation", "no_carrier_scan", "lost_in_transit", "returned_to_sender"}
SHOPIFY_ONLY = {"refund_not_settled", "shipped_after_cancellation"}
TRACKING_TYPES = {"no_carrier_scan", "lost_in_transit", "returned_to_sender"}
SHIPMENT_CONTENT_TYPES = {"short_shipped", "over_shipped", "wrong_item_shipped", "shipped_after_cancellation"}


def _end_of(day: date) -> datetime:
    return at(day, 23, 59)


def detectable_at(exception_type: str, injected: datetime, channel: str | None) -> datetime:
    """From when the default rules must flag an injection (threshold plus margin)."""
    if exception_type == "unfulfilled_past_sla":
        return _end_of(add_business_days(injected.date(), 5))
    if exception_type == "no_carrier_scan":
        return _end_of(add_business_days(injected.date(), 6))
    if exception_type == "lost_in_transit":
        return _end_of(add_business_days(injected.date(), 10))
    if exception_type == "payment_not_settled":
        return injected + timedelta(days=30 if channel == "amazon" else 10)
    if exception_type == "refund_not_settled":
        return injected + timedelta(days=10)
    if exception_type == "payout_not_deposited":
        return _end_of(add_business_days(injected.date(), 6))
    if exception_type == "not_invoiced":
        return injected + timedelta(days=4)
    return injected + timedelta(days=1)


class Injector:
    def __init__(self, sim, profile, seed: int, clock_start: datetime):
        self.sim = sim
        self.profile = profile
        self.rng = np.random.default_rng([seed, 99])
        self.clock_start = clock_start
        self.rows: list[dict] = []
        self.duplicate_mode: dict[int, bool] = {}
        # non-order injections are placed deterministically so every world has them
        n = profile.min_per_type
        recent_days = [sim.start + timedelta(days=d) for d in range((clock_start.date() - sim.start).days - 10)]
        business = [d for d in recent_days if is_business_day(d)][-90:]
        step = max(1, len(business) // (n + 1))
        self.payout_targets = {business[-(1 + i * step)]: i % 2 for i in range(n) if i * step < len(business)}
        last_period = ((clock_start.date() - timedelta(days=12)) - sim.start).days // 14 - 1
        self.settlement_targets = {last_period - 2 * i: i % 2 for i in range(max(2, n // 2)) if last_period - 2 * i >= 0}
        physical = [s for s in sim.skus if not s.is_bundle and s.launched < clock_start.date() - timedelta(days=120)
                    and s.discontinued is None]
        self.inventory_targets: dict[str, tuple[date, int]] = {}
        for i in range(min(len(physical), n + 1)):
            s = physical[(i * 7) % len(physical)]
            if s.sku in self.inventory_targets:
                continue
            start = clock_start.date() + timedelta(days=10) if i == n else clock_start.date() - timedelta(days=6 + 9 * i)
            self.inventory_targets[s.sku] = (start, 8 + 3 * i)
        self.po_every = 4

    # ------------------------------------------------------------------ choosing
    def choose(self, channel: str, fba: bool, lines: list) -> str | None:
        u = float(self.rng.random())
        p = self.profile.discrepancy_rate
        k = int(u // p)
        if k >= len(ORDER_TYPES):
            return None
        kind = ORDER_TYPES[k]
        if fba and kind in MERCHANT_ONLY:
            return None
        if channel != "shopify" and kind in SHOPIFY_ONLY:
            return None
        if kind == "short_shipped" and len(lines) < 2 and lines[0][1] < 2:
            return None
        return kind

    def alter_picks(self, order: dict, n_ship: int, picked: list) -> tuple[list, list]:
        kind = order["injection"]
        if n_ship != 0 or kind not in ("short_shipped", "over_shipped", "wrong_item_shipped"):
            return picked, []
        if kind == "over_shipped":
            if self.duplicate_shipment(order):
                return picked, []
            picked[0][1] += 1
            return picked, [("over_shipped", picked[0][0])]
        if kind == "short_shipped":
            target = next((p for p in picked if p[1] >= 2), None)
            if target is not None:
                target[1] -= 1
                return picked, [("short_shipped", target[0])]
            dropped = picked.pop()
            return picked, [("short_shipped", dropped[0])]
        ordered_sku = picked[0][0]
        wrong = self._sibling(ordered_sku, {p[0] for p in picked})
        picked[0][0] = wrong
        return picked, [("wrong_item_shipped", wrong), ("short_shipped", ordered_sku)]

    def _sibling(self, sku_code: str, exclude: set) -> str:
        by_code = self.sim.skus_by_code()
        s = by_code[sku_code]
        same_product = [x.sku for x in self.sim.skus if x.product_id == s.product_id and x.sku not in exclude and not x.is_bundle]
        if same_product:
            return same_product[0]
        others = [x.sku for x in self.sim.skus if x.sku not in exclude and not x.is_bundle]
        return others[(s.index * 5) % len(others)]

    def duplicate_shipment(self, order: dict) -> bool:
        key = order["order_key"]
        if key not in self.duplicate_mode:
            self.duplicate_mode[key] = len(order["lines"]) == 1 and bool(self.rng.random() < 0.5)
        return self.duplicate_mode[key]

    def tracking_mode(self, order: dict) -> str | None:
        kind = order["injection"]
        return kind if kind in TRACKING_TYPES else None

    # ------------------------------------------------------------------ recording
    def _row(self, exception_type, channel, channel_order_id, sku, reference, injected, detectable, note):
        self.rows.append(dict(exception_type=exception_type, channel=channel, channel_order_id=channel_order_id, sku=sku,
                              reference=reference, injected_at=injected, detectable_at=detectable, note=note))

    def record_order(self, order: dict, exception_type: str, sku: str | None, reference: str | None, injected: datetime) -> None:
        detectable = detectable_at(exception_type, injected, order["channel"])
        if exception_type in SHIPMENT_CONTENT_TYPES:
            # what a shipment holds is judged once the order's SLA has passed (split shipments are done by then)
            detectable = max(detectable, _end_of(add_business_days(order["created"].date(), 4)))
        self._row(exception_type, order["channel"], order["channel_order_id"], sku, reference, injected,
                  detectable, f"order {order['order_key']}")

    def record_amazon(self, order: dict, exception_type: str, sku: str | None, period: int, injected: datetime) -> None:
        settlement_id = self.sim.settlement_id(period)
        report = at(self.sim.start + timedelta(days=(period + 1) * 14)) + timedelta(hours=6)
        self._row(exception_type, "amazon", order["channel_order_id"], sku, str(settlement_id), injected,
                  report + timedelta(days=1), f"order {order['order_key']}")

    def po_short_line(self, n: int, lines: list) -> tuple[int, int] | None:
        if n % self.po_every != self.po_every - 1:
            return None
        qty = lines[0][1]
        return 0, max(1, int(qty * 0.1))

    def record_po_short(self, po_number: str, sku: str, completed: datetime) -> None:
        self._row("po_receipt_mismatch", None, None, sku, po_number, completed, completed + timedelta(days=1), "short receipt")

    def inventory_offset(self, s, day: date) -> int:
        target = self.inventory_targets.get(s.sku)
        if target is None or day < target[0]:
            return 0
        return target[1]

    def deposit_amount(self, channel: str, reference: str, amount: int, paid: datetime, n: int) -> int | None:
        """The amount booked for a payout or settlement deposit: right, missing (None) or wrong."""
        if channel == "shopify":
            mode = self.payout_targets.get(paid.date())
        else:
            mode = self.settlement_targets.get(n)
        if mode is None:
            return amount
        self._row("payout_not_deposited", channel, None, None, reference, paid,
                  detectable_at("payout_not_deposited", paid, channel), "deposit missing" if mode == 0 else "deposit amount differs")
        if mode == 0:
            return None
        return amount - 2500 if amount > 5000 else amount + 2500

    def finish(self) -> None:
        for sku, (start, delta) in self.inventory_targets.items():
            self._row("inventory_mismatch", None, None, sku, None, at(start), at(start) + timedelta(days=1),
                      f"Shopify available is 3PL fulfillable + {delta}")
        truth = self.sim.tables["truth"]
        self.rows.sort(key=lambda r: (r["detectable_at"], r["exception_type"], r["channel_order_id"] or "", r["sku"] or "", r["reference"] or ""))
        for row in self.rows:
            truth.add(**row)
