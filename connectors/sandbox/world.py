"""The synthetic brand's world: the tables the generator writes and the emulators serve.

A world is a folder ``<data_dir>/sandbox/<scale>-s<seed>/`` holding one parquet file per
table (or a folder of parquet parts for the large tables), ``meta.json`` and ``clock.json``.

Every table describes the brand as it really is over the whole simulated period, with the
time each fact happened. The emulators render each system's view *as of the sandbox clock*:
a record exists once its creation time is at or before the clock, and its state (status,
updated time, child records) is built from the events at or before the clock. Moving the
clock (``closeloop sandbox advance``) therefore makes new records appear and older ones
change, exactly as a real system does between two daily runs.

Conventions:
- money is an integer number of minor units (cents) in a ``*_cents`` column, in the shop
  currency (USD) unless the column name says ``presentment``; emulators format it the way
  each API does (Shopify strings "12.30", Xero numbers 12.3, ...).
- instants are ``Datetime("us", "UTC")``; calendar days are ``Date``.
- ids are what each system would use: Shopify integers, ShipBob integers, Xero UUID strings,
  NetSuite integer internal ids, Amazon order ids like ``112-1234567-1234567``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

UTC = pl.Datetime("us", "UTC")
I64 = pl.Int64
STR = pl.String
F64 = pl.Float64
BOOL = pl.Boolean
DATE = pl.Date

SHOP_CURRENCY = "USD"
SHOP_TIMEZONE = "America/New_York"
SHOP_DOMAIN = "closeloop-sandbox.myshopify.com"
AMAZON_MARKETPLACE_ID = "ATVPDKIKX0DER"
AMAZON_MARKETPLACE_NAME = "Amazon.com"

# table name -> {column: (dtype, meaning)}. The generator writes exactly these columns;
# tests check every table against this.
SCHEMA: dict[str, dict[str, tuple[pl.DataType, str]]] = {
    # ---------------------------------------------------------------- catalog
    "suppliers": {
        "supplier_id": (I64, "our id; also the ShipBob/merchant key"),
        "name": (STR, "supplier company name"),
        "country": (STR, "ISO country"),
        "currency": (STR, "currency the supplier invoices in (shop currency in the sandbox)"),
        "lead_time_days_mean": (F64, "mean days from PO to arrival at the 3PL"),
        "lead_time_days_sd": (F64, "standard deviation of that lead time"),
        "moq_units": (I64, "minimum units per PO line"),
        "payment_terms_days": (I64, "net days"),
        "review_cadence_days": (I64, "how often the brand orders from this supplier"),
        "email": (STR, "purchasing contact"),
        "contact_uuid": (STR, "Xero ContactID"),
        "netsuite_id": (I64, "NetSuite vendor internal id"),
        "created_at": (UTC, "when the supplier record was created"),
    },
    "products": {
        "product_id": (I64, "Shopify product id"),
        "title": (STR, "product title"),
        "handle": (STR, "url handle"),
        "product_type": (STR, "category"),
        "vendor": (STR, "brand name"),
        "tags": (STR, "comma list"),
        "created_at": (UTC, "created in Shopify"),
        "updated_at": (UTC, "last change (launch, discontinuation)"),
        "launched_at": (UTC, "first day on sale"),
        "discontinued_at": (UTC, "last day on sale, null when still sold"),
    },
    "variants": {
        "variant_id": (I64, "Shopify variant id"),
        "product_id": (I64, "parent product"),
        "sku": (STR, "stock keeping unit, the key across every system"),
        "title": (STR, "variant title (e.g. 'Large / Blue')"),
        "price_cents": (I64, "list price"),
        "unit_cost_cents": (I64, "landed unit cost from the supplier"),
        "weight_grams": (I64, "shipping weight"),
        "supplier_id": (I64, "who makes it"),
        "case_pack": (I64, "units per case; POs are in whole cases"),
        "moq_units": (I64, "minimum order quantity per PO line"),
        "inventory_item_id": (I64, "Shopify inventory item id"),
        "barcode": (STR, "GTIN-13"),
        "asin": (STR, "Amazon ASIN, null when not listed on Amazon"),
        "amazon_fba": (BOOL, "true when Amazon stocks and ships it (AFN)"),
        "fba_fee_cents": (I64, "FBA per-unit fulfilment fee (0 when not FBA)"),
        "referral_rate_bp": (I64, "Amazon referral fee rate in basis points"),
        "is_bundle": (BOOL, "a bundle of other SKUs (see bundle_components)"),
        "shipbob_product_id": (I64, "ShipBob product id"),
        "shipbob_inventory_id": (I64, "ShipBob inventory id"),
        "xero_item_uuid": (STR, "Xero ItemID"),
        "netsuite_item_id": (I64, "NetSuite inventoryItem internal id"),
        "created_at": (UTC, "created in Shopify"),
        "updated_at": (UTC, "last change"),
    },
    "bundle_components": {
        "bundle_sku": (STR, "the bundle sold"),
        "component_sku": (STR, "a SKU the 3PL picks for it"),
        "quantity": (I64, "units of the component per bundle"),
    },
    "promotions": {
        "promo_id": (STR, "marketing calendar id"),
        "name": (STR, "campaign name"),
        "channel": (STR, "shopify, amazon or all"),
        "starts_on": (DATE, "first day"),
        "ends_on": (DATE, "last day"),
        "discount_pct": (F64, "price discount, 0.2 = 20%"),
        "scope": (STR, "all, product_type or sku"),
        "scope_value": (STR, "the product_type or sku, null for all"),
        "discount_code": (STR, "Shopify discount code, null on Amazon"),
    },
    # ---------------------------------------------------------------- orders
    "orders": {
        "order_key": (I64, "our internal key, unique across channels"),
        "channel": (STR, "shopify or amazon"),
        "channel_order_id": (STR, "Shopify order id (digits) or Amazon order id"),
        "order_name": (STR, "'#1001' on Shopify, the Amazon order id on Amazon"),
        "order_number": (I64, "Shopify order_number, null on Amazon"),
        "created_at": (UTC, "placed and paid"),
        "customer_id": (I64, "Shopify customer id / anonymised Amazon buyer"),
        "email": (STR, "buyer email"),
        "currency": (STR, "shop currency"),
        "presentment_currency": (STR, "currency the buyer paid in"),
        "fx_rate": (F64, "presentment units per shop unit"),
        "subtotal_cents": (I64, "sum of line quantity x price minus line discounts"),
        "total_discounts_cents": (I64, "discounts"),
        "shipping_cents": (I64, "shipping charged"),
        "total_tax_cents": (I64, "tax charged"),
        "total_cents": (I64, "what the buyer was charged, shop currency, at creation"),
        "presentment_total_cents": (I64, "the same in the presentment currency"),
        "fulfillment_channel": (STR, "MERCHANT (3PL) on Shopify; AFN or MFN on Amazon"),
        "promo_id": (STR, "promotion that applied, if any"),
        "discount_code": (STR, "Shopify discount code used, if any"),
        "cancelled_at": (UTC, "cancellation time, null if never cancelled"),
        "cancel_reason": (STR, "customer, fraud, inventory, declined, other"),
        "closed_at": (UTC, "archived after fulfilment and payment"),
        "shipbob_order_id": (I64, "3PL order id; null for Amazon AFN"),
        "ship_to_city": (STR, ""),
        "ship_to_state": (STR, ""),
        "ship_to_zip": (STR, ""),
        "ship_to_country": (STR, "ISO country"),
        "latest_ship_at": (UTC, "Amazon LatestShipDate; Shopify promise"),
        "amazon_shipped_at": (UTC, "Amazon only: when Amazon (AFN) shipped or the 3PL shipment was confirmed (MFN)"),
    },
    "order_lines": {
        "line_id": (I64, "Shopify line item id / our id for Amazon"),
        "order_key": (I64, ""),
        "line_index": (I64, "0-based position"),
        "sku": (STR, ""),
        "variant_id": (I64, ""),
        "product_id": (I64, ""),
        "title": (STR, ""),
        "quantity": (I64, "ordered units"),
        "unit_price_cents": (I64, "price before discount"),
        "discount_cents": (I64, "discount on the whole line"),
        "tax_cents": (I64, "tax on the whole line"),
        "added_at": (UTC, "order creation, or the edit that added the line"),
        "amazon_order_item_id": (STR, "Amazon OrderItemId, null on Shopify"),
    },
    "order_transactions": {
        "transaction_id": (I64, "Shopify order transaction id"),
        "order_key": (I64, ""),
        "kind": (STR, "sale, refund"),
        "status": (STR, "success"),
        "amount_cents": (I64, "shop currency, positive"),
        "presentment_amount_cents": (I64, "presentment currency"),
        "presentment_currency": (STR, ""),
        "gateway": (STR, "shopify_payments"),
        "processed_at": (UTC, ""),
        "parent_id": (I64, "the sale a refund reverses"),
        "refund_id": (I64, "refund that created it"),
    },
    "refunds": {
        "refund_id": (I64, "Shopify refund id / our id on Amazon"),
        "order_key": (I64, ""),
        "created_at": (UTC, ""),
        "note": (STR, ""),
        "restock": (BOOL, ""),
        "amount_cents": (I64, "total refunded, shop currency"),
        "shipping_cents": (I64, "of which shipping"),
        "tax_cents": (I64, "of which tax"),
    },
    "refund_lines": {
        "refund_line_id": (I64, ""),
        "refund_id": (I64, ""),
        "line_id": (I64, ""),
        "sku": (STR, ""),
        "quantity": (I64, ""),
        "subtotal_cents": (I64, "line money refunded before tax"),
        "tax_cents": (I64, ""),
    },
    # ---------------------------------------------------------------- 3PL
    "shipments": {
        "shipment_id": (I64, "ShipBob shipment id"),
        "shipbob_order_id": (I64, ""),
        "order_key": (I64, ""),
        "created_at": (UTC, "picked into a shipment"),
        "shipped_at": (UTC, "label scanned out of the warehouse"),
        "carrier": (STR, "USPS, UPS, FedEx"),
        "carrier_service": (STR, ""),
        "tracking_number": (STR, ""),
        "fulfillment_center_id": (I64, ""),
        "fulfillment_center_name": (STR, ""),
        "shopify_fulfillment_id": (I64, "Shopify fulfillment id; null for Amazon MFN"),
        "invoice_amount_cents": (I64, "what the 3PL bills for the shipment"),
    },
    "shipment_lines": {
        "shipment_id": (I64, ""),
        "sku": (STR, "the SKU the 3PL shipped (components for bundles)"),
        "quantity": (I64, ""),
    },
    "inventory_daily": {
        "date": (DATE, "end of day"),
        "sku": (STR, "physical SKUs only (bundles have no stock)"),
        "on_hand": (I64, "units in the 3PL"),
        "committed": (I64, "allocated to open orders"),
        "fulfillable": (I64, "on hand minus committed"),
        "awaiting": (I64, "units on open receiving orders"),
        "shopify_available": (I64, "what Shopify shows as available"),
    },
    "purchase_orders": {
        "po_id": (I64, "our id"),
        "po_number": (STR, "PO-000123"),
        "supplier_id": (I64, ""),
        "ordered_at": (UTC, "created and sent"),
        "expected_arrival_date": (DATE, ""),
        "received_at": (UTC, "receiving completed, null while in transit"),
        "currency": (STR, ""),
        "total_cents": (I64, ""),
        "xero_uuid": (STR, "Xero PurchaseOrderID"),
        "netsuite_id": (I64, "NetSuite purchaseOrder internal id"),
    },
    "po_lines": {
        "po_id": (I64, ""),
        "line_index": (I64, ""),
        "sku": (STR, ""),
        "quantity": (I64, "units ordered"),
        "unit_cost_cents": (I64, ""),
    },
    "receiving_orders": {
        "wro_id": (I64, "ShipBob warehouse receiving order id"),
        "po_id": (I64, ""),
        "po_number": (STR, ""),
        "created_at": (UTC, "WRO created (with the PO)"),
        "expected_arrival_date": (DATE, ""),
        "arrived_at": (UTC, "boxes at the dock, null until then"),
        "completed_at": (UTC, "counted and stowed"),
        "fulfillment_center_id": (I64, ""),
    },
    "receiving_lines": {
        "wro_id": (I64, ""),
        "sku": (STR, ""),
        "expected_quantity": (I64, ""),
        "received_quantity": (I64, "counted at completion"),
    },
    # ---------------------------------------------------------------- carriers
    "trackers": {
        "tracker_id": (STR, "EasyPost trk_..."),
        "tracking_code": (STR, ""),
        "carrier": (STR, ""),
        "service": (STR, ""),
        "shipment_id": (I64, "ShipBob shipment"),
        "created_at": (UTC, "label created"),
        "est_delivery_at": (UTC, ""),
        "weight_oz": (F64, ""),
        "origin": (STR, "CITY ST, ZIP"),
        "destination": (STR, "CITY ST, ZIP"),
    },
    "tracking_events": {
        "tracking_code": (STR, ""),
        "seq": (I64, "order of the scan"),
        "occurred_at": (UTC, ""),
        "status": (STR, "EasyPost status after this scan"),
        "status_detail": (STR, ""),
        "message": (STR, "carrier text"),
        "city": (STR, ""),
        "state": (STR, ""),
        "zip": (STR, ""),
        "country": (STR, ""),
    },
    # ---------------------------------------------------------------- Shopify Payments
    "payouts": {
        "payout_id": (I64, ""),
        "currency": (STR, ""),
        "amount_cents": (I64, "net paid to the bank; equals minus the payout row's amount"),
        "created_at": (UTC, "payout scheduled (its transactions get payout_id from here)"),
        "paid_at": (UTC, "money sent (status paid from here)"),
        "payout_date": (DATE, "the payout's date"),
        "charges_gross_cents": (I64, ""),
        "charges_fee_cents": (I64, ""),
        "refunds_gross_cents": (I64, ""),
        "refunds_fee_cents": (I64, ""),
        "adjustments_gross_cents": (I64, "disputes and adjustments"),
        "adjustments_fee_cents": (I64, ""),
        "reserved_funds_gross_cents": (I64, "held (negative) or released (positive) reserves"),
        "reserved_funds_fee_cents": (I64, ""),
        "retried_payouts_gross_cents": (I64, ""),
        "retried_payouts_fee_cents": (I64, ""),
    },
    "balance_transactions": {
        "bt_id": (I64, ""),
        "type": (STR, "charge, refund, dispute, reserve, adjustment, payout"),
        "currency": (STR, ""),
        "amount_cents": (I64, "negative for refunds, disputes, holds and the payout row"),
        "fee_cents": (I64, ""),
        "net_cents": (I64, "amount - fee"),
        "source_id": (I64, ""),
        "source_type": (STR, "charge, refund, dispute, reserve, adjustment, payout"),
        "source_order_id": (I64, "Shopify order id"),
        "source_order_transaction_id": (I64, "order transaction id"),
        "processed_at": (UTC, ""),
        "payout_id": (I64, "the payout that carries it (assigned at the payout's created_at)"),
    },
    "disputes": {
        "dispute_id": (I64, ""),
        "channel": (STR, "shopify or amazon"),
        "order_key": (I64, ""),
        "type": (STR, "chargeback"),
        "amount_cents": (I64, ""),
        "currency": (STR, ""),
        "reason": (STR, "fraudulent, product_not_received, ..."),
        "initiated_at": (UTC, ""),
        "evidence_due_by": (DATE, ""),
    },
    # ---------------------------------------------------------------- Amazon settlements
    "settlements": {
        "settlement_id": (I64, ""),
        "start_at": (UTC, "settlement period start"),
        "end_at": (UTC, "settlement period end"),
        "deposit_at": (UTC, "when Amazon pays the bank"),
        "total_cents": (I64, "sum of all lines; can be negative"),
        "currency": (STR, ""),
        "report_id": (STR, "Reports API reportId"),
        "report_document_id": (STR, "Reports API reportDocumentId"),
        "report_created_at": (UTC, "report becomes visible (just after end_at)"),
    },
    "settlement_lines": {
        "settlement_id": (I64, ""),
        "line_no": (I64, "order in the flat file"),
        "transaction_type": (STR, "Order, Refund, Chargeback Refund, other-transaction, ServiceFee"),
        "order_id": (STR, "Amazon order id"),
        "merchant_order_id": (STR, ""),
        "adjustment_id": (STR, ""),
        "shipment_id": (STR, ""),
        "marketplace_name": (STR, ""),
        "amount_type": (STR, "ItemPrice, ItemFees, Promotion, ItemWithheldTax, other-transaction"),
        "amount_description": (STR, "Principal, Shipping, Tax, Commission, FBAPerUnitFulfillmentFee, ..."),
        "amount_cents": (I64, "fees and refunds negative"),
        "fulfillment_id": (STR, "AFN or MFN"),
        "posted_at": (UTC, ""),
        "order_item_code": (STR, "Amazon OrderItemId"),
        "sku": (STR, ""),
        "quantity_purchased": (I64, ""),
        "promotion_id": (STR, ""),
    },
    # ---------------------------------------------------------------- accounting ledger
    "contacts": {
        "contact_uuid": (STR, "Xero ContactID"),
        "netsuite_id": (I64, "NetSuite customer or vendor internal id"),
        "name": (STR, ""),
        "kind": (STR, "customer or supplier"),
        "email": (STR, ""),
        "created_at": (UTC, ""),
    },
    "invoices": {
        "invoice_uuid": (STR, "Xero InvoiceID"),
        "netsuite_id": (I64, "NetSuite invoice internal id"),
        "invoice_number": (STR, "INV-000123"),
        "order_key": (I64, ""),
        "channel": (STR, ""),
        "channel_order_id": (STR, "also the invoice Reference"),
        "contact_uuid": (STR, ""),
        "invoice_date": (DATE, ""),
        "due_date": (DATE, ""),
        "currency": (STR, ""),
        "subtotal_cents": (I64, ""),
        "tax_cents": (I64, ""),
        "total_cents": (I64, ""),
        "created_at": (UTC, ""),
        "voided_at": (UTC, "null while live"),
    },
    "invoice_lines": {
        "invoice_uuid": (STR, ""),
        "line_index": (I64, ""),
        "sku": (STR, "ItemCode; null for shipping and discount lines"),
        "description": (STR, ""),
        "quantity": (I64, ""),
        "unit_amount_cents": (I64, ""),
        "tax_cents": (I64, ""),
        "line_amount_cents": (I64, "quantity x unit amount (tax exclusive)"),
        "account_code": (STR, "200 sales, 260 shipping income"),
    },
    "credit_notes": {
        "credit_note_uuid": (STR, "Xero CreditNoteID"),
        "netsuite_id": (I64, "NetSuite creditMemo internal id"),
        "credit_note_number": (STR, "CN-000123"),
        "invoice_uuid": (STR, "the invoice it is allocated to"),
        "refund_id": (I64, ""),
        "credit_date": (DATE, ""),
        "total_cents": (I64, ""),
        "created_at": (UTC, ""),
    },
    "payments": {
        "payment_uuid": (STR, "Xero PaymentID"),
        "netsuite_id": (I64, "NetSuite customerPayment internal id"),
        "invoice_uuid": (STR, ""),
        "payment_date": (DATE, ""),
        "amount_cents": (I64, ""),
        "account_code": (STR, "clearing account the channel pays into"),
        "reference": (STR, "payout or settlement id"),
        "created_at": (UTC, ""),
    },
    "bank_transactions": {
        "bank_txn_uuid": (STR, "Xero BankTransactionID"),
        "netsuite_id": (I64, "NetSuite deposit internal id"),
        "type": (STR, "RECEIVE or SPEND"),
        "channel": (STR, "shopify or amazon"),
        "payout_reference": (STR, "payout id or settlement id"),
        "reference": (STR, "bank statement text"),
        "txn_date": (DATE, ""),
        "amount_cents": (I64, "positive; type says the direction"),
        "contact_uuid": (STR, ""),
        "bank_account_code": (STR, ""),
        "created_at": (UTC, ""),
    },
    # ---------------------------------------------------------------- ground truth
    "truth": {
        "exception_type": (STR, "one of the CONTRACTS.md vocabulary"),
        "channel": (STR, "shopify, amazon or null"),
        "channel_order_id": (STR, ""),
        "sku": (STR, ""),
        "reference": (STR, "the other system's key, per type (see generator.discrepancies)"),
        "injected_at": (UTC, "when the fault happened"),
        "detectable_at": (UTC, "from when the default rules must flag it"),
        "note": (STR, "what was done"),
    },
}

# tables written as a folder of parquet parts (they grow with the number of orders)
PARTITIONED = {
    "orders", "order_lines", "order_transactions", "refunds", "refund_lines", "shipments",
    "shipment_lines", "trackers", "tracking_events", "balance_transactions", "settlement_lines",
    "invoices", "invoice_lines", "payments", "credit_notes",
}


def data_dir() -> Path:
    return Path(os.environ.get("CLOSELOOP_DATA_DIR", "data"))


def world_dir(scale: str, seed: int, root: Path | None = None) -> Path:
    return (root or data_dir()) / "sandbox" / f"{scale}-s{seed}"


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class WorldMeta:
    scale: str
    seed: int
    start: datetime  # first simulated instant
    end: datetime  # last simulated instant (records after the clock wait to appear)
    clock_start: datetime  # where the clock stands when the world is new
    counts: dict

    @classmethod
    def read(cls, path: Path) -> "WorldMeta":
        raw = json.loads((path / "meta.json").read_text())
        return cls(
            scale=raw["scale"],
            seed=raw["seed"],
            start=parse_instant(raw["start"]),
            end=parse_instant(raw["end"]),
            clock_start=parse_instant(raw["clock_start"]),
            counts=raw["counts"],
        )


class World:
    """A generated world on disk, its tables loaded on first use, and the sandbox clock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "meta.json").exists():
            raise FileNotFoundError(f"{self.path}: not a sandbox world (no meta.json); run 'closeloop sandbox serve' first")
        self.meta = WorldMeta.read(self.path)
        self._tables: dict[str, pl.DataFrame] = {}
        self._clock_mtime: float | None = None
        self._clock: datetime = self.meta.clock_start

    # ---- tables
    def table(self, name: str) -> pl.DataFrame:
        if name not in SCHEMA:
            raise KeyError(f"unknown world table {name!r}")
        if name not in self._tables:
            self._tables[name] = read_table(self.path, name)
        return self._tables[name]

    def __getattr__(self, name: str) -> pl.DataFrame:
        if name in SCHEMA:
            return self.table(name)
        raise AttributeError(name)

    # ---- clock
    @property
    def clock_file(self) -> Path:
        return self.path / "clock.json"

    def now(self) -> datetime:
        """The sandbox clock, re-read whenever clock.json changes (``sandbox advance``)."""
        try:
            mtime = self.clock_file.stat().st_mtime
        except FileNotFoundError:
            return self.meta.clock_start
        if mtime != self._clock_mtime:
            self._clock = parse_instant(json.loads(self.clock_file.read_text())["now"])
            self._clock_mtime = mtime
        return self._clock

    def set_clock(self, instant: datetime) -> datetime:
        instant = min(max(instant, self.meta.start), self.meta.end)
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"now": instant.isoformat()}))
        tmp.replace(self.clock_file)
        return instant

    @property
    def writes_db(self) -> Path:
        """SQLite file where emulators keep what clients wrote (see emulators.state)."""
        return self.path / "writes.sqlite"


def read_table(path: Path, name: str) -> pl.DataFrame:
    single = path / f"{name}.parquet"
    if single.exists():
        return pl.read_parquet(single)
    folder = path / name
    parts = sorted(folder.glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{path}: table {name} is missing")
    return pl.concat([pl.read_parquet(p) for p in parts], how="vertical")


def as_of(frame: pl.DataFrame, column: str, now: datetime) -> pl.DataFrame:
    """Rows whose ``column`` instant is at or before ``now`` (null counts as never)."""
    return frame.filter(pl.col(column).is_not_null() & (pl.col(column) <= now))


