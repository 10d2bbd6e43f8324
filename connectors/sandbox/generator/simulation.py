"""The day-by-day simulation of the brand: orders, stock, the 3PL, carriers, money and books.

Each order's whole life (payment, picking, shipping, tracking, refunds, invoicing) is planned
when it is placed, and written with the time each fact happens; what depends on many orders at
once (stock, Shopify payouts, Amazon settlements, purchase orders) is settled in the day loop.
Discrepancies are injected by :mod:`.discrepancies`, which also records the ground truth.
"""
from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from ..world import AMAZON_MARKETPLACE_NAME, SHOP_CURRENCY
from .calendar import add_business_days, is_business_day
from .catalog import Catalog, Sku, at, stable_uuid
from .demand import DemandModel
from .discrepancies import Injector
from .profiles import ScaleProfile
from .writer import TableBuffer

CITIES = [
    ("Brooklyn", "NY", "11201", 0.08875), ("Austin", "TX", "78701", 0.0825), ("Denver", "CO", "80202", 0.0881),
    ("Seattle", "WA", "98101", 0.1025), ("Portland", "OR", "97201", 0.0), ("Chicago", "IL", "60601", 0.1025),
    ("Miami", "FL", "33101", 0.07), ("Boston", "MA", "02108", 0.0625), ("Phoenix", "AZ", "85001", 0.086),
    ("Atlanta", "GA", "30301", 0.089), ("Nashville", "TN", "37201", 0.0925), ("San Diego", "CA", "92101", 0.0775),
    ("Minneapolis", "MN", "55401", 0.08025), ("Columbus", "OH", "43004", 0.075), ("Wilmington", "DE", "19801", 0.0),
]
FOREIGN = [("CAD", 1.36, "Toronto", "ON", "M5H 2N2", "CA"), ("GBP", 0.79, "London", "", "EC1A 1BB", "GB"),
           ("EUR", 0.92, "Berlin", "", "10115", "DE")]
FULFILLMENT_CENTERS = [(8, "Cicero (IL)", "CICERO", "IL", "60804"), (10, "Moreno Valley (CA)", "MORENO VALLEY", "CA", "92551")]
CARRIERS = {"USPS": ("Ground Advantage", (2, 5)), "UPS": ("Ground", (2, 4)), "FedEx": ("Home Delivery", (1, 4))}
FBA_TIERS = [(250, 322), (500, 386), (1000, 514), (2000, 650)]
FBA_HEAVY = 890
SHOPIFY_RATE, SHOPIFY_INTL_RATE, SHOPIFY_FIXED = 0.029, 0.039, 30
DISPUTE_FEE = 1500
FREE_SHIPPING_FROM = 7500
SHIPPING_CHARGE = 695
SETTLEMENT_DAYS = 14


def fba_fee(weight_grams: int) -> int:
    """Amazon FBA per-unit fee by weight tier (the sandbox's fee schedule)."""
    for limit, fee in FBA_TIERS:
        if weight_grams <= limit:
            return fee
    return FBA_HEAVY


def shopify_fee(amount_cents: int, international: bool) -> int:
    """Shopify Payments fee: rate plus 30 cents, rounded half up to the cent."""
    rate = SHOPIFY_INTL_RATE if international else SHOPIFY_RATE
    return int(amount_cents * rate + 0.5) + SHOPIFY_FIXED


def _hex(seed: int, kind: str, n: int, length: int = 32) -> str:
    return hashlib.sha256(f"{seed}:{kind}:{n}".encode()).hexdigest()[:length]


@dataclass
class PendingMoney:
    """A Shopify balance transaction waiting for a payout."""

    processed_at: datetime
    bt_row: dict
    invoice_payment: dict | None = None  # the invoice this charge pays once it is paid out
    truth_rows: list = field(default_factory=list)


class Simulation:
    def __init__(self, catalog: Catalog, profile: ScaleProfile, seed: int, start: date, end: date,
                 clock_start: datetime, root: Path):
        self.catalog = catalog
        self.profile = profile
        self.seed = seed
        self.start = start
        self.end = end
        self.clock_start = clock_start
        self.rng = np.random.default_rng([seed, 1])
        self.demand = DemandModel(catalog, start)
        self.skus = catalog.skus
        self.tables = {name: TableBuffer(name, root) for name in (
            "orders", "order_lines", "order_transactions", "refunds", "refund_lines", "shipments", "shipment_lines",
            "inventory_daily", "purchase_orders", "po_lines", "receiving_orders", "receiving_lines", "trackers",
            "tracking_events", "payouts", "balance_transactions", "disputes", "settlements", "settlement_lines",
            "invoices", "invoice_lines", "credit_notes", "payments", "bank_transactions", "truth")}
        self.injector = Injector(self, profile, seed, clock_start)
        n = len(self.skus)
        self.on_hand = np.zeros(n, dtype=np.int64)
        self.committed = np.zeros(n, dtype=np.int64)
        self.ship_release: dict[date, np.ndarray] = defaultdict(lambda: np.zeros(n, dtype=np.int64))
        self.receipts: dict[date, list] = defaultdict(list)  # day -> [(po, wro lines)]
        self.awaiting = np.zeros(n, dtype=np.int64)
        self.shipped_history: list[np.ndarray] = []  # merchant units shipped per day (the brand's own view)
        self.counters: dict[str, int] = defaultdict(int)
        self.pending_bt: list = []  # heap of (processed_at, seq, PendingMoney)
        self.settlement_lines: dict[int, list] = defaultdict(list)  # period -> rows
        self.settlement_payments: dict[int, list] = defaultdict(list)  # period -> invoice payments
        self.reserve_windows = self._reserve_windows()
        self.next_review = {s.supplier_id: start + timedelta(days=3 + i * 2) for i, s in enumerate(catalog.suppliers)}
        self.suppliers = {s.supplier_id: s for s in catalog.suppliers}
        self.customer_pool = max(500, int((profile.shopify_orders_per_day + profile.amazon_orders_per_day) * profile.history_days * 0.6))
        self.physical = np.array([not s.is_bundle for s in self.skus])

    # ------------------------------------------------------------------ ids
    def next(self, name: str) -> int:
        self.counters[name] += 1
        return self.counters[name]

    def amazon_order_id(self, n: int) -> str:
        return f"11{n % 8 + 1}-{(n * 7919 + 31) % 10**7:07d}-{(n * 104729 + 12345) % 10**7:07d}"

    def tracking_number(self, carrier: str, n: int) -> str:
        if carrier == "USPS":
            return f"9400{(n * 7907 + self.seed) % 10**18:018d}"
        if carrier == "UPS":
            return f"1Z{_hex(self.seed, 'ups', n, 6).upper()}03{(n * 7919) % 10**8:08d}"
        return f"{(n * 7919 + 700000000000) % 10**12:012d}"

    def settlement_period(self, instant: datetime) -> int:
        return (instant.date() - self.start).days // SETTLEMENT_DAYS

    def settlement_id(self, period: int) -> int:
        return 11_480_000_000 + period * 37 + self.seed % 37

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        day = self.start
        last = self.end
        initial = True
        while day <= last:
            if initial:
                self._initial_stock(day)
                initial = False
            self._receive(day)
            for channel in ("shopify", "amazon"):
                self._orders_for_day(day, channel)
            self._release_shipped(day)
            if is_business_day(day):
                self._payout(day)
            if (day - self.start).days % SETTLEMENT_DAYS == SETTLEMENT_DAYS - 1:
                self._settle((day - self.start).days // SETTLEMENT_DAYS)
            self._review_suppliers(day)
            self._inventory_snapshot(day)
            if (day - self.start).days % self.profile.flush_days == self.profile.flush_days - 1:
                self._flush()
            day += timedelta(days=1)
        self.injector.finish()
        self._flush(final=True)

    def _flush(self, final: bool = False) -> None:
        for table in self.tables.values():
            table.flush(final=final)

    # ------------------------------------------------------------------ stock
    def _expected_merchant_rate(self, s: Sku) -> float:
        return s.base_rate * (1.0 - s.amazon_share * (1.0 if s.amazon_fba else 0.0))

    def _initial_stock(self, day: date) -> None:
        for s in self.skus:
            if s.is_bundle:
                continue
            bundles = sum(b.base_rate for b in self.skus if b.is_bundle and any(c == s.index for c, _ in b.components))
            if s.launched <= day + timedelta(days=30):
                self.on_hand[s.index] = int(np.ceil((self._expected_merchant_rate(s) + bundles) * 75)) + s.case_pack

    def _fulfillable(self, index: int) -> int:
        s = self.skus[index]
        if s.is_bundle:
            return min((self.on_hand[c] - self.committed[c]) // q for c, q in s.components)
        return int(self.on_hand[index] - self.committed[index])

    def _commit(self, index: int, qty: int, ship_day: date | None) -> None:
        s = self.skus[index]
        parts = s.components if s.is_bundle else [(index, 1)]
        for c, q in parts:
            self.committed[c] += q * qty
            if ship_day is not None:
                self.ship_release[ship_day][c] += q * qty

    def _uncommit(self, index: int, qty: int) -> None:
        s = self.skus[index]
        for c, q in (s.components if s.is_bundle else [(index, 1)]):
            self.committed[c] -= q * qty

    def _release_shipped(self, day: date) -> None:
        shipped = self.ship_release.pop(day, None)
        if shipped is None:
            shipped = np.zeros(len(self.skus), dtype=np.int64)
        self.on_hand -= shipped
        self.committed -= shipped
        self.shipped_history.append(shipped)

    def _inventory_snapshot(self, day: date) -> None:
        inv = self.tables["inventory_daily"]
        for s in self.skus:
            if s.is_bundle:
                continue
            i = s.index
            fulfillable = int(self.on_hand[i] - self.committed[i])
            inv.add(date=day, sku=s.sku, on_hand=int(self.on_hand[i]), committed=int(self.committed[i]),
                    fulfillable=fulfillable, awaiting=int(self.awaiting[i]),
                    shopify_available=fulfillable + self.injector.inventory_offset(s, day))

    # ------------------------------------------------------------------ purchasing
    def _review_suppliers(self, day: date) -> None:
        for supplier in self.catalog.suppliers:
            if self.next_review[supplier.supplier_id] != day:
                continue
            self.next_review[supplier.supplier_id] = day + timedelta(days=supplier.cadence)
            window = self.shipped_history[-28:]
            trailing = np.sum(window, axis=0) / max(1, len(window)) if window else np.zeros(len(self.skus))
            lines = []
            for s in self.skus:
                if s.is_bundle or s.supplier_id != supplier.supplier_id:
                    continue
                if s.discontinued is not None and day > s.discontinued - timedelta(days=int(supplier.lead_mean)):
                    continue
                if s.launched > day + timedelta(days=int(supplier.lead_mean) + 10):
                    continue
                rate = trailing[s.index] if s.launched < day - timedelta(days=40) else self._expected_merchant_rate(s) * 1.2
                cover = supplier.lead_mean + supplier.cadence
                position = self.on_hand[s.index] - self.committed[s.index] + self.awaiting[s.index]
                if position < rate * (cover + 7):
                    want = rate * (cover + 24) - position
                    qty = max(int(np.ceil(want / s.case_pack)) * s.case_pack, int(np.ceil(s.moq_units / s.case_pack)) * s.case_pack)
                    lines.append((s, int(qty)))
            if lines:
                self._purchase_order(day, supplier, lines)

    def _purchase_order(self, day: date, supplier, lines: list) -> None:
        n = self.next("po")
        po_id = 500_000 + n
        ordered_at = at(day, 14, 0)
        lead = max(5.0, float(self.rng.normal(supplier.lead_mean, supplier.lead_sd)))
        arrived_at = ordered_at + timedelta(days=lead)
        arrived_at = at(arrived_at.date(), 15, 0)
        completed_at = at(add_business_days(arrived_at.date() + timedelta(days=1), 0), 20, 0)
        expected = day + timedelta(days=int(round(supplier.lead_mean)))
        po_number = f"PO-{n:05d}"
        total = 0
        wro_id = 70_000 + n
        received = []
        short = self.injector.po_short_line(n, lines)
        for li, (s, qty) in enumerate(lines):
            self.tables["po_lines"].add(po_id=po_id, line_index=li, sku=s.sku, quantity=qty, unit_cost_cents=s.unit_cost_cents)
            total += qty * s.unit_cost_cents
            got = qty - short[1] if short and short[0] == li else qty
            self.tables["receiving_lines"].add(wro_id=wro_id, sku=s.sku, expected_quantity=qty, received_quantity=got)
            received.append((s.index, qty, got))
            self.awaiting[s.index] += qty
        self.tables["purchase_orders"].add(
            po_id=po_id, po_number=po_number, supplier_id=supplier.supplier_id, ordered_at=ordered_at,
            expected_arrival_date=expected, received_at=completed_at, currency=SHOP_CURRENCY, total_cents=total,
            xero_uuid=stable_uuid(self.seed, "po", n), netsuite_id=61_000 + n)
        fc = FULFILLMENT_CENTERS[0]
        self.tables["receiving_orders"].add(
            wro_id=wro_id, po_id=po_id, po_number=po_number, created_at=ordered_at + timedelta(hours=1),
            expected_arrival_date=expected, arrived_at=arrived_at, completed_at=completed_at, fulfillment_center_id=fc[0])
        self.receipts[completed_at.date()].append(received)
        if short:
            self.injector.record_po_short(po_number, lines[short[0]][0].sku, completed_at)

    def _receive(self, day: date) -> None:
        for received in self.receipts.pop(day, []):
            for index, expected, got in received:
                self.on_hand[index] += got
                self.awaiting[index] -= expected

    # ------------------------------------------------------------------ orders
    def _orders_for_day(self, day: date, channel: str) -> None:
        rates, promos = self.demand.rates(day, channel)
        if channel == "amazon":
            listed = np.array([s.asin is not None for s in self.skus])
            rates = np.where(listed, rates, 0.0)
        total = rates.sum()
        if total <= 0:
            return
        lines_per_order = 1.45 * 1.25
        n_orders = int(self.rng.poisson(total / lines_per_order))
        probs = rates / total
        seconds = np.sort(self.rng.integers(0, 86400, size=n_orders))
        for k in range(n_orders):
            created = at(day) + timedelta(seconds=int(seconds[k]))
            n_lines = int(self.rng.choice([1, 2, 3], p=[0.7, 0.22, 0.08]))
            n_lines = min(n_lines, int((probs > 0).sum()))
            picks = self.rng.choice(len(self.skus), size=n_lines, replace=False, p=probs)
            wanted = [(int(i), int(self.rng.choice([1, 2, 3], p=[0.82, 0.14, 0.04]))) for i in picks]
            self._place_order(channel, created, wanted, promos)

    def _place_order(self, channel: str, created: datetime, wanted: list, promos: list) -> None:
        rng = self.rng
        fba = channel == "amazon" and self.skus[wanted[0][0]].amazon_fba
        if fba:
            wanted = [(i, q) for i, q in wanted if self.skus[i].amazon_fba]  # FBA stock is Amazon's, not censored here
            lines = wanted
        else:
            if channel == "amazon":
                wanted = [(i, q) for i, q in wanted if not self.skus[i].amazon_fba]
            lines = []
            for i, q in wanted:
                if self._fulfillable(i) >= q:
                    lines.append((i, q))
                    self._commit(i, q, None)
            for i, q in lines:
                self._uncommit(i, q)
        if not lines:
            return
        order_key = self.next("order")
        injection = self.injector.choose(channel, fba, lines)
        city = CITIES[int(rng.integers(0, len(CITIES)))]
        currency, fx, country = SHOP_CURRENCY, 1.0, "US"
        ship_city, ship_state, ship_zip, tax_rate = city
        if channel == "shopify" and rng.random() < 0.1:
            cur = FOREIGN[int(rng.integers(0, len(FOREIGN)))]
            currency, fx = cur[0], round(cur[1] * float(rng.uniform(0.98, 1.02)), 4)
            ship_city, ship_state, ship_zip, country, tax_rate = cur[2], cur[3], cur[4], cur[5], 0.0
        # ---- money of the lines
        line_rows = []
        subtotal = discounts = tax_total = 0
        promo_used = None
        for idx, (i, q) in enumerate(lines):
            s = self.skus[i]
            promo = promos[i]
            discount = int(round(s.price_cents * q * promo.discount_pct)) if promo is not None else 0
            if promo is not None:
                promo_used = promo
            tax = int(round((s.price_cents * q - discount) * tax_rate))
            subtotal += s.price_cents * q - discount
            discounts += discount
            tax_total += tax
            line_rows.append(dict(index=idx, sku=s, qty=q, price=s.price_cents, discount=discount, tax=tax, added_at=created))
        shipping = 0 if (subtotal >= FREE_SHIPPING_FROM or (channel == "amazon" and fba)) else SHIPPING_CHARGE
        if channel == "amazon" and not fba and rng.random() < 0.6:
            shipping = 0
        total = subtotal + shipping + tax_total
        if channel == "shopify":
            n = self.counters["shopify_order"] = self.counters["shopify_order"] + 1
            channel_order_id = str(5_812_000_000_000 + n * 11)
            order_name, order_number = f"#{1000 + n}", 1000 + n
            customer = int(rng.integers(0, self.customer_pool))
            customer_id, email = 8_200_000_000_000 + customer, f"buyer{customer}@example.com"
        else:
            n = self.counters["amazon_order"] = self.counters["amazon_order"] + 1
            channel_order_id = self.amazon_order_id(n)
            order_name, order_number, customer_id = channel_order_id, None, None
            email = f"{_hex(self.seed, 'buyer', n, 16)}@marketplace.amazon.com"
        order = dict(order_key=order_key, channel=channel, channel_order_id=channel_order_id, created=created,
                     lines=line_rows, total=total, shipping=shipping, tax=tax_total, fx=fx, currency=currency,
                     fba=fba, injection=injection, international=currency != SHOP_CURRENCY,
                     ship_to=f"{ship_city.upper()} {ship_state}, {ship_zip}".replace("  ", " "))
        # ---- life events
        plan = self._plan(order, created)
        for row in line_rows:
            row["line_id"] = 14_900_000_000_000 + self.next("line") * 3
            row["item_id"] = f"{(order_key * 97 + row['index']) % 10**14:014d}" if channel == "amazon" else None
        if plan["added_line"] is not None:
            i = plan["added_line"]
            s = self.skus[i]
            tax = int(round(s.price_cents * tax_rate))
            line_rows.append(dict(index=len(line_rows), sku=s, qty=1, price=s.price_cents, discount=0, tax=tax,
                                  added_at=plan["edited_at"], line_id=14_900_000_000_000 + self.next("line") * 3, item_id=None))
            order["edit_amount"] = s.price_cents + tax
        # stock: merchant orders hold stock until they ship
        if not fba:
            for row in line_rows:
                ships = plan["cancelled_at"] is None or injection == "shipped_after_cancellation"
                release = plan["ship_day_by_line"].get(row["index"]) if ships else None
                self._commit(row["sku"].index, row["qty"], release)
                if release is None:
                    self._uncommit(row["sku"].index, row["qty"])  # cancelled or never shipped: not holding stock
        self.tables["orders"].add(
            order_key=order_key, channel=channel, channel_order_id=channel_order_id, order_name=order_name,
            order_number=order_number, created_at=created, customer_id=customer_id, email=email,
            currency=SHOP_CURRENCY, presentment_currency=currency, fx_rate=fx, subtotal_cents=subtotal,
            total_discounts_cents=discounts, shipping_cents=shipping, total_tax_cents=tax_total, total_cents=total,
            presentment_total_cents=int(round(total * fx)),
            fulfillment_channel=("MERCHANT" if channel == "shopify" else ("AFN" if fba else "MFN")),
            promo_id=promo_used.promo_id if promo_used else None,
            discount_code=promo_used.discount_code if (promo_used and channel == "shopify") else None,
            cancelled_at=plan["cancelled_at"], cancel_reason=plan["cancel_reason"], closed_at=None,
            shipbob_order_id=(310_000_000 + order_key) if not fba else None,
            ship_to_city=ship_city, ship_to_state=ship_state, ship_to_zip=ship_zip, ship_to_country=country,
            latest_ship_at=at(add_business_days(created.date(), 2), 23, 59),
            amazon_shipped_at=plan["amazon_shipped_at"])
        for row in line_rows:
            s = row["sku"]
            self.tables["order_lines"].add(
                line_id=row["line_id"], order_key=order_key, line_index=row["index"], sku=s.sku, variant_id=s.variant_id,
                product_id=s.product_id, title=s.product_title, quantity=row["qty"], unit_price_cents=row["price"],
                discount_cents=row["discount"], tax_cents=row["tax"], added_at=row["added_at"], amazon_order_item_id=row["item_id"])
        self._write_life(order, plan)

    def _ship_time(self, created: datetime, delay_days: int) -> datetime:
        day = created.date()
        if not is_business_day(day) or created.hour >= 19:
            day = add_business_days(day + timedelta(days=1), 0)
        day = add_business_days(day, delay_days)
        return at(day, 20) + timedelta(minutes=int(self.rng.integers(0, 180)))

    def _plan(self, order: dict, created: datetime) -> dict:
        """Decide the order's life: edits, cancellation, shipments, refunds, disputes."""
        rng = self.rng
        inj = order["injection"]
        clean = inj is None
        channel = order["channel"]
        plan = dict(added_line=None, edited_at=None, cancelled_at=None, cancel_reason=None, shipments=[],
                    ship_day_by_line={}, refunds=[], amazon_shipped_at=None, dispute_at=None)
        lines = order["lines"]
        if clean and rng.random() < (0.02 if channel == "shopify" else 0.012) or inj == "shipped_after_cancellation":
            plan["cancelled_at"] = created + timedelta(minutes=int(rng.integers(10, 50)))
            plan["cancel_reason"] = str(rng.choice(["customer", "inventory", "fraud", "other"]))
            if inj == "shipped_after_cancellation":
                plan["cancel_reason"] = "customer"
            else:
                return plan
        if channel == "shopify" and clean and rng.random() < 0.015 and not order["fba"]:
            candidates = [i for i in range(len(self.skus)) if not self.skus[i].is_bundle and self._fulfillable(i) > 5
                          and all(i != row["sku"].index for row in lines)]
            if candidates:
                plan["added_line"] = candidates[int(rng.integers(0, len(candidates)))]
                plan["edited_at"] = created + timedelta(minutes=int(rng.integers(15, 60)))
        if order["fba"]:
            plan["amazon_shipped_at"] = created + timedelta(hours=float(rng.uniform(4, 30)))
            if inj != "payment_not_settled" and rng.random() < 0.05 and clean:
                plan["refunds"].append(("full" if rng.random() < 0.5 else "partial", plan["amazon_shipped_at"] + timedelta(days=float(rng.uniform(7, 30)))))
            if inj == "chargeback":
                plan["dispute_at"] = plan["amazon_shipped_at"] + timedelta(days=float(rng.uniform(10, 40)))
            return plan
        if inj == "unfulfilled_past_sla":
            return plan
        delay = 1 if rng.random() < 0.12 else 0
        first = self._ship_time(created, delay)
        if plan["edited_at"] is not None and first < plan["edited_at"] + timedelta(hours=1):
            first = self._ship_time(plan["edited_at"] + timedelta(hours=1), 0)
        all_indexes = [row["index"] for row in lines] + ([len(lines)] if plan["added_line"] is not None else [])
        if clean and len(all_indexes) > 1 and rng.random() < 0.1:
            cut = int(rng.integers(1, len(all_indexes)))
            second = at(add_business_days(first.date() + timedelta(days=1), 0), 20) + timedelta(minutes=int(rng.integers(0, 180)))
            groups = [(first, all_indexes[:cut]), (second, all_indexes[cut:])]
        else:
            groups = [(first, all_indexes)]
        for when, indexes in groups:
            plan["shipments"].append(dict(shipped_at=when, lines=indexes))
            for ix in indexes:
                plan["ship_day_by_line"][ix] = when.date()
        if channel == "amazon":
            plan["amazon_shipped_at"] = groups[-1][0] + timedelta(minutes=30)
        delivered_guess = groups[-1][0] + timedelta(days=5)
        if clean and rng.random() < (0.08 if channel == "shopify" else 0.05):
            kind = "full" if rng.random() < 0.25 else "partial"
            plan["refunds"].append((kind, delivered_guess + timedelta(days=float(rng.uniform(3, 20)))))
        if inj == "refund_not_settled":
            plan["refunds"].append(("partial", delivered_guess + timedelta(days=float(rng.uniform(3, 10)))))
        if inj == "chargeback":
            plan["dispute_at"] = delivered_guess + timedelta(days=float(rng.uniform(10, 40)))
        return plan

    # ------------------------------------------------------------------ writing an order's life
    def _write_life(self, order: dict, plan: dict) -> None:
        channel = order["channel"]
        key = order["order_key"]
        created = order["created"]
        inj = order["injection"]
        lines = order["lines"]
        by_index = {row["index"]: row for row in lines}
        invoice = None
        # ---- payment (Shopify charges at checkout; Amazon pays through settlements)
        sale_txn = edit_txn = None
        if channel == "shopify":
            sale_txn = self._shopify_transaction(order, "sale", order["total"], created + timedelta(seconds=5), None, None)
            if plan["edited_at"] is not None:
                edit_txn = self._shopify_transaction(order, "sale", order["edit_amount"], plan["edited_at"] + timedelta(seconds=5), None, None)
        # ---- cancellation
        if plan["cancelled_at"] is not None:
            if channel == "shopify":
                self._queue_charge(order, sale_txn, None, created + timedelta(seconds=5), order["total"])
                self._refund(order, plan["cancelled_at"], "full", sale_txn, cancelled=True)
            if inj != "shipped_after_cancellation":
                return
        # ---- shipments and tracking
        shipments = self._write_shipments(order, plan, by_index)
        if not shipments and not order["fba"]:
            self.injector.record_order(order, "unfulfilled_past_sla", None, None, created)
            if channel == "shopify":
                self._queue_charge(order, sale_txn, None, created + timedelta(seconds=5), order["total"])
            return
        if inj == "shipped_after_cancellation":
            return
        shipped_at = plan["amazon_shipped_at"] if order["fba"] else shipments[0]["shipped_at"]
        # ---- invoice in the books
        invoice = self._invoice(order, shipped_at, by_index)
        # ---- money: charges into payouts / settlements
        if channel == "shopify":
            self._queue_charge(order, sale_txn, invoice, created + timedelta(seconds=5), order["total"])
            if plan["edited_at"] is not None:
                self._queue_charge(order, edit_txn, None, plan["edited_at"] + timedelta(seconds=5), order["edit_amount"], edit=True)
        else:
            self._amazon_order_rows(order, plan["amazon_shipped_at"], invoice)
        # ---- refunds and disputes
        for kind, when in plan["refunds"]:
            self._refund(order, when, kind, sale_txn, invoice=invoice)
        if plan["dispute_at"] is not None:
            self._dispute(order, plan["dispute_at"])

    def _shopify_transaction(self, order, kind, amount, when, parent, refund_id) -> int:
        txn_id = 6_700_000_000_000 + self.next("txn") * 7
        self.tables["order_transactions"].add(
            transaction_id=txn_id, order_key=order["order_key"], kind=kind, status="success", amount_cents=amount,
            presentment_amount_cents=int(round(amount * order["fx"])), presentment_currency=order["currency"],
            gateway="shopify_payments", processed_at=when, parent_id=parent, refund_id=refund_id)
        return txn_id

    def _write_shipments(self, order, plan, by_index) -> list[dict]:
        out = []
        inj = order["injection"]
        rng = self.rng
        if order["fba"]:
            return out
        specs = list(plan["shipments"])
        for n_ship, spec in enumerate(specs):
            picked = []  # (sku, qty)
            for ix in spec["lines"]:
                row = by_index[ix]
                s = row["sku"]
                parts = s.components if s.is_bundle else [(s.index, 1)]
                for c, q in parts:
                    picked.append([self.skus[c].sku, q * row["qty"]])
            picked, extra_truth = self.injector.alter_picks(order, n_ship, picked)
            shipment = self._shipment(order, spec["shipped_at"], picked)
            out.append(shipment)
            for exception_type, sku in extra_truth:
                self.injector.record_order(order, exception_type, sku, str(shipment["shipment_id"]), shipment["shipped_at"])
        if inj == "over_shipped" and self.injector.duplicate_shipment(order):
            spec = specs[-1]
            when = at(add_business_days(spec["shipped_at"].date() + timedelta(days=1), 0), 21)
            picked = [[self.skus[c].sku, q * by_index[ix]["qty"]] for ix in spec["lines"]
                      for c, q in (self.skus[by_index[ix]["sku"].index].components if by_index[ix]["sku"].is_bundle else [(by_index[ix]["sku"].index, 1)])]
            dup = self._shipment(order, when, picked)
            out.append(dup)
            for sku, _ in picked:
                self.injector.record_order(order, "over_shipped", sku, str(dup["shipment_id"]), when)
        if inj == "shipped_after_cancellation" and out:
            self.injector.record_order(order, inj, None, str(out[0]["shipment_id"]), out[0]["shipped_at"])
        return out

    def _shipment(self, order, shipped_at: datetime, picked: list) -> dict:
        rng = self.rng
        n = self.next("shipment")
        shipment_id = 420_000_000 + n * 3
        weight = sum(self.skus_by_code()[sku].weight_grams * q for sku, q in picked)
        carrier = "USPS" if weight < 800 else ("UPS" if rng.random() < 0.6 else "FedEx")
        service, transit = CARRIERS[carrier]
        tracking = self.tracking_number(carrier, n)
        fc = FULFILLMENT_CENTERS[int(rng.integers(0, len(FULFILLMENT_CENTERS)))]
        created = shipped_at - timedelta(hours=float(rng.uniform(2, 5)))
        self.tables["shipments"].add(
            shipment_id=shipment_id, shipbob_order_id=310_000_000 + order["order_key"], order_key=order["order_key"],
            created_at=created, shipped_at=shipped_at, carrier=carrier, carrier_service=service, tracking_number=tracking,
            fulfillment_center_id=fc[0], fulfillment_center_name=fc[1],
            shopify_fulfillment_id=(4_800_000_000_000 + n * 5) if order["channel"] == "shopify" else None,
            invoice_amount_cents=int(350 + weight * 0.4))
        for sku, q in picked:
            self.tables["shipment_lines"].add(shipment_id=shipment_id, sku=sku, quantity=int(q))
        self._tracking(order, shipment_id, n, carrier, service, transit, tracking, created + timedelta(minutes=30), shipped_at, fc, weight)
        return dict(shipment_id=shipment_id, shipped_at=shipped_at, tracking=tracking)

    def skus_by_code(self) -> dict:
        cache = getattr(self, "_by_code", None)
        if cache is None:
            cache = self._by_code = {s.sku: s for s in self.skus}
        return cache

    def _tracking(self, order, shipment_id, n, carrier, service, transit, tracking, label_at, shipped_at, fc, weight):
        rng = self.rng
        tracker_id = "trk_" + _hex(self.seed, "trk", n)
        days = int(rng.integers(transit[0], transit[1] + 1))
        delivered = at((shipped_at + timedelta(days=days)).date(), 15) + timedelta(minutes=int(rng.integers(0, 300)))
        if delivered.weekday() == 6:
            delivered += timedelta(days=1)
        self.tables["trackers"].add(
            tracker_id=tracker_id, tracking_code=tracking, carrier=carrier, service=service, shipment_id=shipment_id,
            created_at=label_at, est_delivery_at=delivered, weight_oz=round(weight / 28.3495, 1),
            origin=f"{fc[2]} {fc[3]}, {fc[4]}", destination=order["ship_to"])
        events = [(label_at, "pre_transit", "label_created", "Shipping Label Created", fc[2], fc[3], fc[4])]
        mode = self.injector.tracking_mode(order)
        if mode == "no_carrier_scan":
            self._events(tracking, events)
            self.injector.record_order(order, "no_carrier_scan", None, tracking, label_at)
            return
        t = shipped_at + timedelta(hours=float(rng.uniform(1, 5)))
        events.append((t, "in_transit", "arrived_at_facility", f"Accepted at {carrier} Origin Facility", fc[2], fc[3], fc[4]))
        hubs = [("MEMPHIS", "TN", "38118"), ("LOUISVILLE", "KY", "40209"), ("INDIANAPOLIS", "IN", "46241"), ("DALLAS", "TX", "75261")]
        stops = max(1, days - 1)
        if mode == "lost_in_transit":
            stops = 1
        for k in range(stops):
            t = t + timedelta(hours=float(rng.uniform(14, 30)))
            if t >= delivered - timedelta(hours=8) and mode is None:
                break
            hub = hubs[(n + k) % len(hubs)]
            events.append((t, "in_transit", "departed_facility" if k % 2 else "arrived_at_facility",
                           "Departed Facility" if k % 2 else "Arrived at Sort Facility", *hub))
        if mode == "lost_in_transit":
            self._events(tracking, events)
            self.injector.record_order(order, "lost_in_transit", None, tracking, events[-1][0])
            return
        if mode == "returned_to_sender":
            attempt = max(delivered - timedelta(hours=2), events[-1][0] + timedelta(hours=6))
            events.append((attempt, "in_transit", "delivery_exception", "Delivery Attempted - No Access to Delivery Location", "", "", ""))
            rts = attempt + timedelta(days=2)
            events.append((rts, "return_to_sender", "return", "Return to Sender Processed", "", "", ""))
            self._events(tracking, events)
            self.injector.record_order(order, "returned_to_sender", None, tracking, rts)
            return
        events.append((delivered - timedelta(hours=6), "out_for_delivery", "out_for_delivery", "Out for Delivery", "", "", ""))
        events.append((delivered, "delivered", "arrived_at_destination", "Delivered, Front Door/Porch", "", "", ""))
        self._events(tracking, events)

    def _events(self, tracking, events):
        table = self.tables["tracking_events"]
        for seq, (t, status, detail, message, city, state, zip_) in enumerate(events):
            table.add(tracking_code=tracking, seq=seq, occurred_at=t, status=status, status_detail=detail, message=message,
                      city=city or None, state=state or None, zip=zip_ or None, country="US")

    # ------------------------------------------------------------------ books
    def _invoice(self, order, shipped_at, by_index) -> dict | None:
        inj = order["injection"]
        if inj == "not_invoiced":
            self.injector.record_order(order, "not_invoiced", None, None, shipped_at)
            return None
        created = shipped_at + timedelta(hours=float(self.rng.uniform(1, 6)))
        invoice = self._write_invoice(order, created, alter=(inj == "invoice_amount_mismatch"))
        if inj == "invoice_amount_mismatch":
            self.injector.record_order(order, inj, None, invoice["number"], created)
        if inj == "duplicate_invoice":
            dup = self._write_invoice(order, created + timedelta(days=float(self.rng.uniform(1, 3))), alter=False)
            self.injector.record_order(order, inj, None, dup["number"], dup["created_at"])
        return invoice

    def _write_invoice(self, order, created, alter: bool) -> dict:
        n = self.next("invoice")
        uuid_ = stable_uuid(self.seed, "invoice", n)
        number = f"INV-{n:06d}"
        rows = []
        for row in order["lines"]:
            s = row["sku"]
            rows.append((s.sku, f"{s.product_title} - {s.title}", row["qty"], row["price"], row["tax"], "200"))
        discount = sum(row["discount"] for row in order["lines"])
        if discount:
            rows.append((None, "Discount", 1, -discount, 0, "200"))
        if order["shipping"]:
            rows.append((None, "Shipping", 1, order["shipping"], 0, "260"))
        if alter:
            if order["shipping"]:
                rows = [r for r in rows if r[1] != "Shipping"]
            else:
                sku, desc, q, unit, tax, acct = rows[0]
                rows[0] = (sku, desc, q, int(unit * 0.85), tax, acct)
        subtotal = tax = 0
        for li, (sku, desc, q, unit, t, acct) in enumerate(rows):
            self.tables["invoice_lines"].add(invoice_uuid=uuid_, line_index=li, sku=sku, description=desc, quantity=q,
                                             unit_amount_cents=unit, tax_cents=t, line_amount_cents=q * unit, account_code=acct)
            subtotal += q * unit
            tax += t
        self.tables["invoices"].add(
            invoice_uuid=uuid_, netsuite_id=900_000 + n, invoice_number=number, order_key=order["order_key"],
            channel=order["channel"], channel_order_id=order["channel_order_id"],
            contact_uuid=stable_uuid(self.seed, "customer-contact", order["channel"]), invoice_date=created.date(),
            due_date=created.date() + timedelta(days=7), currency=SHOP_CURRENCY, subtotal_cents=subtotal, tax_cents=tax,
            total_cents=subtotal + tax, created_at=created, voided_at=None)
        return dict(uuid=uuid_, number=number, total=subtotal + tax, created_at=created)

    def _credit_note(self, invoice, refund_id, amount, when) -> None:
        if invoice is None or when < invoice["created_at"]:
            return
        n = self.next("credit_note")
        created = when + timedelta(hours=float(self.rng.uniform(2, 20)))
        self.tables["credit_notes"].add(
            credit_note_uuid=stable_uuid(self.seed, "credit-note", n), netsuite_id=950_000 + n,
            credit_note_number=f"CN-{n:06d}", invoice_uuid=invoice["uuid"], refund_id=refund_id,
            credit_date=created.date(), total_cents=amount, created_at=created)

    # ------------------------------------------------------------------ refunds and disputes
    def _refund(self, order, when, kind, sale_txn, cancelled=False, invoice=None) -> None:
        lines = order["lines"]
        refund_id = 9_100_000_000_000 + self.next("refund") * 13
        if kind == "full":
            chosen = [(row, row["qty"]) for row in lines]
            shipping = order["shipping"]
        else:
            row = lines[int(self.rng.integers(0, len(lines)))]
            chosen = [(row, 1)]
            shipping = 0
        subtotal = tax = 0
        for row, q in chosen:
            line_sub = (row["price"] * row["qty"] - row["discount"]) * q // row["qty"]
            line_tax = row["tax"] * q // row["qty"]
            subtotal += line_sub
            tax += line_tax
            self.tables["refund_lines"].add(refund_line_id=3_300_000_000 + self.next("refund_line"), refund_id=refund_id,
                                            line_id=row["line_id"], sku=row["sku"].sku, quantity=q,
                                            subtotal_cents=line_sub, tax_cents=line_tax)
        amount = subtotal + tax + shipping
        if cancelled and order.get("edit_amount"):
            amount = order["total"]
        self.tables["refunds"].add(refund_id=refund_id, order_key=order["order_key"], created_at=when,
                                   note="Order cancelled" if cancelled else ("Return received" if kind == "full" else "Item returned"),
                                   restock=False, amount_cents=amount, shipping_cents=shipping, tax_cents=tax)
        if order["channel"] == "shopify":
            txn = self._shopify_transaction(order, "refund", amount, when, sale_txn, refund_id)
            if order["injection"] == "refund_not_settled" and not cancelled:
                self.injector.record_order(order, "refund_not_settled", None, None, when)
            else:
                self._queue_bt(when, dict(type="refund", amount=-amount, fee=0, source_type="refund", order=order, txn=txn))
        else:
            self._amazon_refund_rows(order, chosen, shipping, when, refund_id)
        self._credit_note(invoice, refund_id, amount, when)

    def _dispute(self, order, when) -> None:
        dispute_id = 55_000_000_000 + self.next("dispute")
        amount = order["total"]
        self.tables["disputes"].add(dispute_id=dispute_id, channel=order["channel"], order_key=order["order_key"],
                                    type="chargeback", amount_cents=amount, currency=SHOP_CURRENCY,
                                    reason=str(self.rng.choice(["fraudulent", "product_not_received", "unrecognized"])),
                                    initiated_at=when, evidence_due_by=(when + timedelta(days=14)).date())
        if order["channel"] == "shopify":
            self._queue_bt(when, dict(type="dispute", amount=-amount, fee=DISPUTE_FEE, source_type="dispute", order=order,
                                      txn=None, source_id=dispute_id), truth=("chargeback", None))
        else:
            period = self.settlement_period(when)
            for row in order["lines"]:
                self._settlement_row(period, "Chargeback Refund", order, row, "ItemPrice", "Principal", -(row["price"] * row["qty"] - row["discount"]), when)
            self.injector.record_amazon(order, "chargeback", None, period, when)

    # ------------------------------------------------------------------ Shopify Payments
    def _queue_charge(self, order, txn, invoice, when, amount, edit=False) -> None:
        inj = order["injection"]
        if inj == "payment_not_settled" and not edit:
            self.injector.record_order(order, "payment_not_settled", None, None, when)
            return
        settled = amount
        truth = None
        if inj == "settlement_amount_mismatch" and not edit:
            settled = amount - max(100, int(amount * 0.08))
            truth = ("settlement_amount_mismatch", None)
        fee = shopify_fee(settled, order["international"])
        if inj == "fee_anomaly" and not edit:
            fee += max(75, int(settled * 0.02))
            truth = ("fee_anomaly", None)
        payment = None
        if invoice is not None:
            payment = dict(invoice=invoice, amount=invoice["total"])
        self._queue_bt(when, dict(type="charge", amount=settled, fee=fee, source_type="charge", order=order, txn=txn),
                       payment=payment, truth=truth)

    def _queue_bt(self, when, bt, payment=None, truth=None) -> None:
        pending = PendingMoney(when, bt, payment)
        if truth is not None:
            pending.truth_rows.append(truth)
        heapq.heappush(self.pending_bt, (when, self.next("bt_seq"), pending))

    def _reserve_windows(self) -> list[tuple[date, date, int]]:
        """Shopify holds a reserve for a while, then releases it (held, released, cents)."""
        held = self.clock_start.date() - timedelta(days=45)
        if held <= self.start + timedelta(days=10):
            held = self.start + timedelta(days=20)
        return [(held, held + timedelta(days=14), int(self.profile.shopify_orders_per_day * 1500))]

    def _payout(self, day: date) -> None:
        for held, released, amount in self.reserve_windows:
            if day == held:
                self._queue_bt(at(day, 2), dict(type="reserve", amount=-amount, fee=0, source_type="reserve", order=None, txn=None))
            if day == released:
                self._queue_bt(at(day, 2), dict(type="reserve", amount=amount, fee=0, source_type="reserve", order=None, txn=None))
        cutoff = at(day - timedelta(days=1))
        taken: list[PendingMoney] = []
        while self.pending_bt and self.pending_bt[0][0] < cutoff:
            taken.append(heapq.heappop(self.pending_bt)[2])
        if not taken:
            return
        net_total = sum(p.bt_row["amount"] - p.bt_row["fee"] for p in taken)
        if net_total <= 0:
            for p in taken:  # nothing to pay out: they wait for the next payout
                heapq.heappush(self.pending_bt, (p.processed_at, self.next("bt_seq"), p))
            return
        n = self.next("payout")
        payout_id = 81_000_000 + n * 9
        created = at(day, 9)
        paid = at(day, 21)
        summary = defaultdict(int)
        bts = self.tables["balance_transactions"]
        for p in taken:
            row = p.bt_row
            bt_id = 2_400_000_000 + self.next("bt") * 3
            order = row["order"]
            bucket = {"charge": "charges", "refund": "refunds", "dispute": "adjustments", "adjustment": "adjustments",
                      "reserve": "reserved_funds"}[row["type"]]
            summary[f"{bucket}_gross_cents"] += row["amount"]
            summary[f"{bucket}_fee_cents"] += row["fee"]
            bts.add(bt_id=bt_id, type=row["type"], currency=SHOP_CURRENCY, amount_cents=row["amount"], fee_cents=row["fee"],
                    net_cents=row["amount"] - row["fee"], source_id=row.get("source_id") or row.get("txn") or bt_id,
                    source_type=row["source_type"], source_order_id=int(order["channel_order_id"]) if order else None,
                    source_order_transaction_id=row.get("txn"), processed_at=p.processed_at, payout_id=payout_id)
            for exception_type, sku in p.truth_rows:
                self.injector.record_order(order, exception_type, sku, str(payout_id), created)
            if p.invoice_payment is not None:
                invoice = p.invoice_payment["invoice"]
                self._payment(invoice, day, max(paid, invoice["created_at"]) + timedelta(hours=2), "1210", str(payout_id))
        bts.add(bt_id=2_400_000_000 + self.next("bt") * 3, type="payout", currency=SHOP_CURRENCY, amount_cents=-net_total,
                fee_cents=0, net_cents=-net_total, source_id=payout_id, source_type="payout", source_order_id=None,
                source_order_transaction_id=None, processed_at=created, payout_id=payout_id)
        self.tables["payouts"].add(
            payout_id=payout_id, currency=SHOP_CURRENCY, amount_cents=net_total, created_at=created, paid_at=paid, payout_date=day,
            **{k: summary.get(k, 0) for k in (
                "charges_gross_cents", "charges_fee_cents", "refunds_gross_cents", "refunds_fee_cents",
                "adjustments_gross_cents", "adjustments_fee_cents", "reserved_funds_gross_cents", "reserved_funds_fee_cents",
                "retried_payouts_gross_cents", "retried_payouts_fee_cents")})
        self._deposit("shopify", str(payout_id), f"SHOPIFY PAYOUT {payout_id}", net_total, paid, n)

    def _payment(self, invoice, pay_date: date, created: datetime, account: str, reference: str) -> None:
        n = self.next("payment")
        self.tables["payments"].add(payment_uuid=stable_uuid(self.seed, "payment", n), netsuite_id=970_000 + n,
                                    invoice_uuid=invoice["uuid"], payment_date=pay_date,
                                    amount_cents=invoice["total"], account_code=account,
                                    reference=reference, created_at=created)

    def _deposit(self, channel: str, payout_reference: str, text: str, amount: int, paid: datetime, n: int) -> None:
        booked = at(add_business_days(paid.date() + timedelta(days=1), 0), 14)
        amount = self.injector.deposit_amount(channel, payout_reference, amount, paid, n)
        if amount is None:
            return
        k = self.next("bank_txn")
        self.tables["bank_transactions"].add(
            bank_txn_uuid=stable_uuid(self.seed, "bank-txn", k), netsuite_id=980_000 + k,
            type="RECEIVE" if amount >= 0 else "SPEND", channel=channel, payout_reference=payout_reference, reference=text,
            txn_date=booked.date(), amount_cents=abs(amount),
            contact_uuid=stable_uuid(self.seed, "customer-contact", channel), bank_account_code="090", created_at=booked)

    # ------------------------------------------------------------------ Amazon settlements
    def _settlement_row(self, period, transaction_type, order, row, amount_type, description, amount, posted,
                        promotion_id=None, adjustment_id=None) -> None:
        s = row["sku"] if row else None
        self.settlement_lines[period].append(dict(
            transaction_type=transaction_type, order_id=order["channel_order_id"] if order else None,
            merchant_order_id=None, adjustment_id=adjustment_id,
            shipment_id=("D" + _hex(self.seed, "amzship", order["order_key"], 8).upper()) if (order and transaction_type == "Order") else None,
            marketplace_name=AMAZON_MARKETPLACE_NAME if order else None, amount_type=amount_type, amount_description=description,
            amount_cents=int(amount), fulfillment_id=("AFN" if order["fba"] else "MFN") if order else None, posted_at=posted,
            order_item_code=row["item_id"] if row else None, sku=s.sku if s else None,
            quantity_purchased=row["qty"] if (row and transaction_type == "Order" and amount_type == "ItemPrice" and description == "Principal") else None,
            promotion_id=promotion_id))

    def _amazon_order_rows(self, order, shipped_at, invoice) -> None:
        inj = order["injection"]
        if inj == "payment_not_settled":
            self.injector.record_order(order, "payment_not_settled", None, None, shipped_at)
            return
        period = self.settlement_period(shipped_at)
        anomaly_line = 0 if inj == "fee_anomaly" else None
        for row in order["lines"]:
            s = row["sku"]
            principal = row["price"] * row["qty"]
            if inj == "settlement_amount_mismatch" and row["index"] == 0:
                principal -= max(100, int(principal * 0.1))
            self._settlement_row(period, "Order", order, row, "ItemPrice", "Principal", principal, shipped_at)
            if order["shipping"] and row["index"] == 0:
                self._settlement_row(period, "Order", order, row, "ItemPrice", "Shipping", order["shipping"], shipped_at)
            if row["tax"]:
                self._settlement_row(period, "Order", order, row, "ItemPrice", "Tax", row["tax"], shipped_at)
                self._settlement_row(period, "Order", order, row, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -row["tax"], shipped_at)
            if row["discount"]:
                self._settlement_row(period, "Order", order, row, "Promotion", "Principal", -row["discount"], shipped_at,
                                     promotion_id=f"{_hex(self.seed, 'promo', row['line_id'], 12)}")
            commission = int((principal - row["discount"]) * s.referral_rate_bp / 10000 + 0.5)
            if anomaly_line == row["index"]:
                commission += max(100, int(commission * 0.3))
            self._settlement_row(period, "Order", order, row, "ItemFees", "Commission", -commission, shipped_at)
            if order["fba"]:
                self._settlement_row(period, "Order", order, row, "ItemFees", "FBAPerUnitFulfillmentFee", -fba_fee(s.weight_grams) * row["qty"], shipped_at)
        if inj in ("settlement_amount_mismatch", "fee_anomaly"):
            self.injector.record_amazon(order, inj, order["lines"][0]["sku"].sku if inj == "fee_anomaly" else None, period, shipped_at)
        if invoice is not None:
            self.settlement_payments[period].append(invoice)

    def _amazon_refund_rows(self, order, chosen, shipping, when, refund_id) -> None:
        period = self.settlement_period(when)
        adjustment = f"amzn1.adj.{_hex(self.seed, 'adj', refund_id, 12)}"
        for row, q in chosen:
            s = row["sku"]
            principal = (row["price"] * row["qty"] - row["discount"]) * q // row["qty"]
            tax = row["tax"] * q // row["qty"]
            commission = int(principal * s.referral_rate_bp / 10000 + 0.5)
            self._settlement_row(period, "Refund", order, row, "ItemPrice", "Principal", -principal, when, adjustment_id=adjustment)
            if tax:
                self._settlement_row(period, "Refund", order, row, "ItemPrice", "Tax", -tax, when, adjustment_id=adjustment)
                self._settlement_row(period, "Refund", order, row, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", tax, when, adjustment_id=adjustment)
            self._settlement_row(period, "Refund", order, row, "ItemFees", "Commission", commission, when, adjustment_id=adjustment)
            self._settlement_row(period, "Refund", order, row, "ItemFees", "RefundCommission", -min(500, int(commission * 0.2 + 0.5)), when, adjustment_id=adjustment)
        if shipping:
            self._settlement_row(period, "Refund", order, chosen[0][0], "ItemPrice", "Shipping", -shipping, when, adjustment_id=adjustment)

    def _amazon_reserve(self, period: int, rows: list) -> list[tuple[str, int]]:
        """Amazon holds a reserve once, large enough to make that settlement negative, then
        releases it in the next one (both are normal, not discrepancies)."""
        held = ((self.clock_start.date() - timedelta(days=40)) - self.start).days // SETTLEMENT_DAYS
        if period == held:
            self.amazon_reserve_held = sum(r["amount_cents"] for r in rows) + 5000
            return [("Current Reserve Amount", -self.amazon_reserve_held)]
        if period == held + 1 and getattr(self, "amazon_reserve_held", 0):
            return [("Previous Reserve Amount Balance", self.amazon_reserve_held)]
        return []

    def _settle(self, period: int) -> None:
        start = at(self.start + timedelta(days=period * SETTLEMENT_DAYS))
        end = start + timedelta(days=SETTLEMENT_DAYS)
        rows = self.settlement_lines.pop(period, [])
        self._settlement_row(period, "ServiceFee", None, None, "other-transaction", "Subscription Fee", -3999, start + timedelta(hours=30))
        rows = self.settlement_lines.pop(period, []) + rows
        reserve = self._amazon_reserve(period, rows)
        if reserve:
            for description, amount in reserve:
                rows.append(dict(transaction_type="other-transaction", order_id=None, merchant_order_id=None, adjustment_id=None,
                                 shipment_id=None, marketplace_name=None, amount_type="other-transaction",
                                 amount_description=description, amount_cents=amount, fulfillment_id=None,
                                 posted_at=end - timedelta(seconds=1), order_item_code=None, sku=None,
                                 quantity_purchased=None, promotion_id=None))
        settlement_id = self.settlement_id(period)
        total = sum(r["amount_cents"] for r in rows)
        deposit = end + timedelta(days=2, hours=12)
        report_created = end + timedelta(hours=6)
        table = self.tables["settlement_lines"]
        rows.sort(key=lambda r: (r["posted_at"], r["order_id"] or "", r["order_item_code"] or ""))
        for i, r in enumerate(rows):
            table.add(settlement_id=settlement_id, line_no=i + 1, **r)
        self.tables["settlements"].add(
            settlement_id=settlement_id, start_at=start, end_at=end, deposit_at=deposit, total_cents=total,
            currency=SHOP_CURRENCY, report_id=str(50_000_000_000 + period * 101), report_document_id=f"amzn1.spdoc.1.4.na.{_hex(self.seed, 'doc', period, 24)}",
            report_created_at=report_created)
        for invoice in self.settlement_payments.pop(period, []):
            self._payment(invoice, deposit.date(), max(deposit, invoice["created_at"]) + timedelta(hours=20), "1215", str(settlement_id))
        self._deposit("amazon", str(settlement_id), f"AMAZON SETTLEMENT {settlement_id}", total, deposit, period)
