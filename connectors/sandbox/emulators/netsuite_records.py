"""The world as NetSuite's books: one header frame (and a line frame) per record type, as of the clock.

Header frames carry NetSuite field names as columns (the names the ``q`` filter and the record
JSON use); columns starting with ``_`` hold what rendering needs but NetSuite does not expose
as a plain field (display names, status codes, reference types).

Mapping (a record exists from its creation instant; status and lastModifiedDate come from the
events at or before the clock):

=================  ==============================  ==========================================
record type        world rows                      status / lastModifiedDate events
=================  ==============================  ==========================================
salesOrder         orders                          cancel, shipments, invoice, close
itemFulfillment    shipments (from shipped_at)     shipped
invoice            invoices                        payments, credit notes, void
creditMemo         credit_notes                    created
customerPayment    payments                        deposit of its payout/settlement
deposit            bank_transactions               created
purchaseOrder      purchase_orders + po_lines      received_at (Pending Receipt -> Pending Bill)
journalEntry       none (written by clients only)
customer           contacts (kind customer)        created
vendor             suppliers                       created
inventoryItem      variants                        updated_at, discontinuation
=================  ==============================  ==========================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import polars as pl

from ..world import World

RECORD_TYPES = (
    "salesOrder", "itemFulfillment", "invoice", "creditMemo", "customerPayment", "deposit",
    "purchaseOrder", "journalEntry", "customer", "vendor", "inventoryItem",
)
TRANSACTION_TYPES = {
    "salesOrder": ("SalesOrd", "Sales Order"),
    "itemFulfillment": ("ItemShip", "Item Fulfillment"),
    "invoice": ("CustInvc", "Invoice"),
    "creditMemo": ("CustCred", "Credit Memo"),
    "customerPayment": ("CustPymt", "Payment"),
    "deposit": ("Deposit", "Deposit"),
    "purchaseOrder": ("PurchOrd", "Purchase Order"),
    "journalEntry": ("Journal", "Journal"),
}
TYPE_BY_LOWER = {t.lower(): t for t in RECORD_TYPES}

CURRENCY_ID = 1  # the shop currency (USD) is currency 1, as in a single-currency US account
CURRENCY_NAME = "US Dollar"
SUBSIDIARY_ID = 1
SUBSIDIARY_NAME = "Closeloop Brand Inc."
# invoice lines without a SKU are charged through two non-inventory items
SHIPPING_ITEM = (9001, "Shipping")
DISCOUNT_ITEM = (9002, "Discount")

UTC_DT = pl.Datetime("us", "UTC")

# status refName -> NetSuite status letter, per record type (salesOrder/purchaseOrder orderStatus)
STATUS_CODES = {
    "salesOrder": {"Pending Fulfillment": "B", "Cancelled": "C", "Pending Billing": "F", "Billed": "G", "Closed": "H"},
    "itemFulfillment": {"Picked": "A", "Packed": "B", "Shipped": "C"},
    "invoice": {"Open": "A", "Paid In Full": "B", "Voided": "V"},
    "creditMemo": {"Open": "A", "Fully Applied": "B"},
    "customerPayment": {"Unapproved Payment": "A", "Not Deposited": "B", "Deposited": "C"},
    "purchaseOrder": {"Pending Receipt": "B", "Pending Bill": "F", "Fully Billed": "G", "Closed": "H"},
    "journalEntry": {"Approved for Posting": "B"},
}
DEFAULT_STATUS = {"salesOrder": "Pending Fulfillment", "invoice": "Open", "purchaseOrder": "Pending Receipt",
                  "journalEntry": "Approved for Posting", "creditMemo": "Open", "customerPayment": "Not Deposited",
                  "itemFulfillment": "Shipped"}

# reference fields: field -> (record type it points to, column with its display name)
REFERENCE_FIELDS = {
    "entity": (None, "_entityName"),  # customer or vendor, per _entityType
    "customer": ("customer", "_entityName"),
    "createdFrom": (None, "_createdFromName"),
    "currency": ("currency", None),
    "subsidiary": ("subsidiary", None),
    "account": ("account", "_accountName"),
    "preferredVendor": ("vendor", "_vendorName"),
}


def _upto(expr: pl.Expr, now: datetime) -> pl.Expr:
    """The instant when it is at or before the clock, else null (events after the clock are unseen)."""
    return pl.when(expr <= now).then(expr).otherwise(None)


def _seconds(expr: pl.Expr) -> pl.Expr:
    # NetSuite stores instants to the second; truncating keeps q comparisons and output aligned
    return expr.dt.truncate("1s")


def _money(cents: pl.Expr) -> pl.Expr:
    return (cents.cast(pl.Float64) / 100.0).round(2)


@dataclass
class IdPlan:
    """Internal ids for the record types whose world tables carry no NetSuite id."""

    sales_order_base: int
    fulfillment_base: int
    client_base: int  # ids given to records clients create start above this


def plan_ids(world: World) -> IdPlan:
    top = 0
    for table, column in (("invoices", "netsuite_id"), ("credit_notes", "netsuite_id"), ("payments", "netsuite_id"),
                          ("bank_transactions", "netsuite_id"), ("purchase_orders", "netsuite_id"),
                          ("contacts", "netsuite_id"), ("suppliers", "netsuite_id"), ("variants", "netsuite_item_id")):
        frame = world.table(table)
        if frame.height:
            top = max(top, int(frame[column].max() or 0))
    step = 1_000_000
    base = (top // step + 1) * step
    orders = world.table("orders").height
    shipments = world.table("shipments").height
    fulfillment_base = base + (orders // step + 1) * step
    client_base = fulfillment_base + (shipments // step + 1) * step
    return IdPlan(base, fulfillment_base, client_base)


@dataclass
class Books:
    """Every record type's header and line frames as of one clock instant."""

    now: datetime
    ids: IdPlan
    headers: dict[str, pl.DataFrame] = field(default_factory=dict)
    lines: dict[str, pl.DataFrame] = field(default_factory=dict)
    extra_sublists: dict[str, dict[str, pl.DataFrame]] = field(default_factory=dict)


def build_books(world: World, now: datetime, ids: IdPlan) -> Books:
    """Render every record type from the world as of ``now``."""
    books = Books(now=now, ids=ids)
    w = world
    contacts = w.table("contacts").select(
        pl.col("contact_uuid"), pl.col("netsuite_id").alias("_cid"), pl.col("name").alias("_cname")
    )
    orders_all = w.table("orders").sort(["created_at", "order_key"]).with_row_index("_rank", offset=1)
    so_ids = orders_all.select("order_key", (pl.col("_rank").cast(pl.Int64) + ids.sales_order_base).alias("_so_id"))
    invoices_now = w.table("invoices").filter(pl.col("created_at") <= now)
    # the customer record of each channel (a standing fact, not an event): orders not invoiced yet
    # already name their customer
    channel_customer = (
        w.table("invoices").group_by("channel").agg(pl.col("contact_uuid").sort().first().alias("_channel_contact"))
        .join(contacts.rename({"contact_uuid": "_channel_contact", "_cid": "_ch_cid", "_cname": "_ch_cname"}), on="_channel_contact", how="left")
        .drop("_channel_contact")
    )
    order_customer = (
        orders_all.select("order_key", "channel")
        .join(invoices_now.sort("created_at").group_by("order_key").agg(pl.col("contact_uuid").first(), pl.col("created_at").min().alias("_invoiced_at")),
              on="order_key", how="left")
        .join(contacts, on="contact_uuid", how="left")
        .join(channel_customer, on="channel", how="left")
        .with_columns(_cid=pl.coalesce("_cid", "_ch_cid"), _cname=pl.coalesce("_cname", "_ch_cname"))
        .drop("channel", "_ch_cid", "_ch_cname")
    )
    variants = w.table("variants").select("sku", pl.col("netsuite_item_id").alias("_item_id"))

    # ------------------------------------------------ salesOrder
    shipped = w.table("shipments").filter(pl.col("shipped_at") <= now)
    shipped_by_order = shipped.group_by("order_key").agg(pl.col("shipped_at").max().alias("_last_shipped"))
    orders = (
        orders_all.filter(pl.col("created_at") <= now)
        .join(so_ids, on="order_key", how="left")
        .join(order_customer, on="order_key", how="left")
        .join(shipped_by_order, on="order_key", how="left")
        .with_columns(
            _cancelled=_upto(pl.col("cancelled_at"), now),
            _closed=_upto(pl.col("closed_at"), now),
            _amz_shipped=_upto(pl.col("amazon_shipped_at"), now),
        )
        .with_columns(_fulfilled=pl.coalesce("_last_shipped", "_amz_shipped"))
        .with_columns(
            status=pl.when(pl.col("_cancelled").is_not_null()).then(pl.lit("Cancelled"))
            .when(pl.col("_fulfilled").is_null()).then(pl.lit("Pending Fulfillment"))
            .when(pl.col("_invoiced_at").is_null()).then(pl.lit("Pending Billing"))
            .otherwise(pl.lit("Billed")),
            lastModifiedDate=_seconds(pl.max_horizontal("created_at", "_cancelled", "_closed", "_fulfilled", "_invoiced_at")),
        )
    )
    books.headers["salesOrder"] = orders.select(
        pl.col("_so_id").alias("id"),
        (pl.lit("SO") + pl.col("order_key").cast(pl.String)).alias("tranId"),
        pl.col("created_at").dt.date().alias("tranDate"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        "lastModifiedDate",
        "status",
        pl.col("_cid").alias("entity"),
        pl.col("_cname").alias("_entityName"),
        pl.lit("customer").alias("_entityType"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.col("subtotal_cents")).alias("subtotal"),
        _money(-pl.col("total_discounts_cents")).alias("discountTotal"),
        _money(pl.col("shipping_cents")).alias("shippingCost"),
        _money(pl.col("total_tax_cents")).alias("taxTotal"),
        _money(pl.col("total_cents")).alias("total"),
        pl.col("email"),
        pl.col("order_name").alias("memo"),
        pl.col("channel_order_id").alias("otherRefNum"),
        pl.col("channel_order_id").alias("externalId"),
        pl.col("channel").alias("custbody_sales_channel"),
        pl.col("_fulfilled").dt.date().alias("shipDate"),
    )
    order_lines = w.table("order_lines").filter(pl.col("added_at") <= now).join(so_ids, on="order_key").join(variants, on="sku", how="left")
    books.lines["salesOrder"] = order_lines.select(
        pl.col("_so_id").alias("_parent"),
        (pl.col("line_index") + 1).alias("line"),
        pl.col("_item_id").alias("item"),
        pl.col("sku").alias("_itemName"),
        pl.col("title").alias("description"),
        pl.col("quantity").cast(pl.Float64).alias("quantity"),
        _money(pl.col("unit_price_cents")).alias("rate"),
        _money(pl.col("quantity") * pl.col("unit_price_cents") - pl.col("discount_cents")).alias("amount"),
        _money(pl.col("tax_cents")).alias("taxAmount"),
    )

    # ------------------------------------------------ itemFulfillment
    shipments_all = w.table("shipments").sort(["shipment_id"]).with_row_index("_rank", offset=1)
    fulfillments = (
        shipments_all.filter(pl.col("shipped_at") <= now)
        .join(so_ids, on="order_key", how="left")
        .join(orders_all.select("order_key", "channel_order_id", "order_name"), on="order_key", how="left")
        .join(order_customer.select("order_key", "_cid", "_cname"), on="order_key", how="left")
    )
    books.headers["itemFulfillment"] = fulfillments.select(
        (pl.col("_rank").cast(pl.Int64) + ids.fulfillment_base).alias("id"),
        (pl.lit("IF") + pl.col("shipment_id").cast(pl.String)).alias("tranId"),
        pl.col("shipped_at").dt.date().alias("tranDate"),
        _seconds(pl.col("shipped_at")).alias("createdDate"),
        _seconds(pl.col("shipped_at")).alias("lastModifiedDate"),
        pl.lit("Shipped").alias("status"),
        pl.col("_cid").alias("entity"),
        pl.col("_cname").alias("_entityName"),
        pl.lit("customer").alias("_entityType"),
        pl.col("_so_id").alias("createdFrom"),
        (pl.lit("Sales Order #SO") + pl.col("order_key").cast(pl.String)).alias("_createdFromName"),
        pl.lit("salesOrder").alias("_createdFromType"),
        pl.col("order_name").alias("memo"),
        pl.col("channel_order_id").alias("otherRefNum"),
        pl.col("shipment_id").cast(pl.String).alias("externalId"),
        (pl.col("carrier") + pl.lit(" ") + pl.col("carrier_service")).alias("shipMethod"),
        pl.col("carrier").alias("custbody_carrier"),
        pl.col("tracking_number").alias("_trackingNumber"),
        pl.col("fulfillment_center_name").alias("custbody_fulfillment_center"),
    )
    shipment_ids = fulfillments.select("shipment_id", (pl.col("_rank").cast(pl.Int64) + ids.fulfillment_base).alias("_parent"))
    books.lines["itemFulfillment"] = (
        w.table("shipment_lines").join(shipment_ids, on="shipment_id").join(variants, on="sku", how="left")
        .with_columns(line=pl.int_range(1, pl.len() + 1).over("_parent"))
        .select("_parent", "line", pl.col("_item_id").alias("item"), pl.col("sku").alias("_itemName"),
                pl.col("quantity").cast(pl.Float64), pl.lit(True).alias("itemReceive"))
    )
    books.extra_sublists["itemFulfillment"] = {
        "package": fulfillments.select(
            (pl.col("_rank").cast(pl.Int64) + ids.fulfillment_base).alias("_parent"),
            pl.lit(1).alias("line"),
            pl.col("tracking_number").alias("packageTrackingNumber"),
            (pl.col("carrier") + pl.lit(" ") + pl.col("carrier_service")).alias("packageDescr"),
        )
    }

    # ------------------------------------------------ invoice
    payments_now = w.table("payments").filter(pl.col("created_at") <= now)
    credits_now = w.table("credit_notes").filter(pl.col("created_at") <= now)
    paid = payments_now.group_by("invoice_uuid").agg(pl.col("amount_cents").sum().alias("_paid"), pl.col("created_at").max().alias("_last_paid"))
    credited = credits_now.group_by("invoice_uuid").agg(pl.col("total_cents").sum().alias("_credited"), pl.col("created_at").max().alias("_last_credit"))
    invoices = (
        invoices_now.join(contacts, on="contact_uuid", how="left").join(so_ids, on="order_key", how="left")
        .join(paid, on="invoice_uuid", how="left").join(credited, on="invoice_uuid", how="left")
        .with_columns(
            _voided=_upto(pl.col("voided_at"), now),
            _paid=pl.col("_paid").fill_null(0), _credited=pl.col("_credited").fill_null(0),
        )
        .with_columns(
            status=pl.when(pl.col("_voided").is_not_null()).then(pl.lit("Voided"))
            .when(pl.col("_paid") + pl.col("_credited") >= pl.col("total_cents")).then(pl.lit("Paid In Full"))
            .otherwise(pl.lit("Open")),
            lastModifiedDate=_seconds(pl.max_horizontal("created_at", "_voided", "_last_paid", "_last_credit")),
        )
    )
    books.headers["invoice"] = invoices.select(
        pl.col("netsuite_id").alias("id"),
        pl.col("invoice_number").alias("tranId"),
        pl.col("invoice_date").alias("tranDate"),
        pl.col("due_date").alias("dueDate"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        "lastModifiedDate",
        "status",
        pl.col("_cid").alias("entity"),
        pl.col("_cname").alias("_entityName"),
        pl.lit("customer").alias("_entityType"),
        pl.col("_so_id").alias("createdFrom"),
        (pl.lit("Sales Order #SO") + pl.col("order_key").cast(pl.String)).alias("_createdFromName"),
        pl.lit("salesOrder").alias("_createdFromType"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.col("subtotal_cents")).alias("subtotal"),
        _money(pl.col("tax_cents")).alias("taxTotal"),
        _money(pl.col("total_cents")).alias("total"),
        _money(pl.col("_paid")).alias("amountPaid"),
        _money(pl.when(pl.col("_voided").is_not_null()).then(0).otherwise(
            (pl.col("total_cents") - pl.col("_paid") - pl.col("_credited")).clip(lower_bound=0))).alias("amountRemaining"),
        pl.col("channel_order_id").alias("otherRefNum"),
        pl.col("invoice_number").alias("externalId"),
        pl.col("channel").alias("custbody_sales_channel"),
        pl.lit(None, dtype=pl.String).alias("memo"),
    )
    invoice_ids = invoices.select("invoice_uuid", pl.col("netsuite_id").alias("_parent"))
    books.lines["invoice"] = (
        w.table("invoice_lines").join(invoice_ids, on="invoice_uuid").join(variants, on="sku", how="left")
        .select(
            "_parent",
            (pl.col("line_index") + 1).alias("line"),
            pl.when(pl.col("sku").is_not_null()).then(pl.col("_item_id"))
            .when(pl.col("account_code") == "260").then(pl.lit(SHIPPING_ITEM[0]))
            .otherwise(pl.lit(DISCOUNT_ITEM[0])).cast(pl.Int64).alias("item"),
            pl.when(pl.col("sku").is_not_null()).then(pl.col("sku"))
            .when(pl.col("account_code") == "260").then(pl.lit(SHIPPING_ITEM[1]))
            .otherwise(pl.lit(DISCOUNT_ITEM[1])).alias("_itemName"),
            "description",
            pl.col("quantity").cast(pl.Float64),
            _money(pl.col("unit_amount_cents")).alias("rate"),
            _money(pl.col("line_amount_cents")).alias("amount"),
            _money(pl.col("tax_cents")).alias("taxAmount"),
        )
    )

    # ------------------------------------------------ creditMemo
    invoice_keys = w.table("invoices").select(
        "invoice_uuid", pl.col("netsuite_id").alias("_inv_id"), pl.col("invoice_number").alias("_inv_number"),
        "contact_uuid", "channel_order_id", "channel",
    ).join(contacts, on="contact_uuid", how="left")
    credits = credits_now.join(invoice_keys, on="invoice_uuid", how="left")
    books.headers["creditMemo"] = credits.select(
        pl.col("netsuite_id").alias("id"),
        pl.col("credit_note_number").alias("tranId"),
        pl.col("credit_date").alias("tranDate"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        _seconds(pl.col("created_at")).alias("lastModifiedDate"),
        pl.lit("Fully Applied").alias("status"),
        pl.col("_cid").alias("entity"),
        pl.col("_cname").alias("_entityName"),
        pl.lit("customer").alias("_entityType"),
        pl.col("_inv_id").alias("createdFrom"),
        (pl.lit("Invoice #") + pl.col("_inv_number")).alias("_createdFromName"),
        pl.lit("invoice").alias("_createdFromType"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.col("total_cents")).alias("total"),
        _money(pl.col("total_cents")).alias("applied"),
        pl.lit(0.0).alias("unapplied"),
        (pl.lit("Refund ") + pl.col("refund_id").cast(pl.String)).alias("memo"),
        pl.col("channel_order_id").alias("otherRefNum"),
        pl.col("credit_note_number").alias("externalId"),
    )
    books.extra_sublists["creditMemo"] = {"apply": credits.select(
        pl.col("netsuite_id").alias("_parent"), pl.lit(1).alias("line"), pl.col("_inv_id").alias("doc"),
        pl.col("_inv_number").alias("refNum"), pl.lit(True).alias("apply"), _money(pl.col("total_cents")).alias("amount"),
    )}

    # ------------------------------------------------ customerPayment
    bank_now = w.table("bank_transactions").filter(pl.col("created_at") <= now)
    deposited = bank_now.group_by("payout_reference").agg(
        pl.col("created_at").min().alias("_deposited_at"), pl.col("netsuite_id").min().alias("_deposit_id"))
    payments = (
        payments_now.join(invoice_keys, on="invoice_uuid", how="left")
        .join(deposited, left_on="reference", right_on="payout_reference", how="left")
        .with_columns(
            status=pl.when(pl.col("_deposited_at").is_not_null()).then(pl.lit("Deposited")).otherwise(pl.lit("Not Deposited")),
            lastModifiedDate=_seconds(pl.max_horizontal("created_at", "_deposited_at")),
        )
    )
    books.headers["customerPayment"] = payments.select(
        pl.col("netsuite_id").alias("id"),
        (pl.lit("PYMT") + pl.col("netsuite_id").cast(pl.String)).alias("tranId"),
        pl.col("payment_date").alias("tranDate"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        "lastModifiedDate",
        "status",
        pl.col("_cid").alias("customer"),
        pl.col("_cname").alias("_entityName"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.col("amount_cents")).alias("payment"),
        _money(pl.col("amount_cents")).alias("total"),
        pl.col("account_code").alias("_accountName"),
        pl.col("account_code").alias("account"),
        pl.col("reference").alias("memo"),
        pl.col("channel_order_id").alias("otherRefNum"),
        pl.col("_deposit_id").alias("custbody_deposit"),
    )
    books.extra_sublists["customerPayment"] = {"apply": payments.select(
        pl.col("netsuite_id").alias("_parent"), pl.lit(1).alias("line"), pl.col("_inv_id").alias("doc"),
        pl.col("_inv_number").alias("refNum"), pl.lit(True).alias("apply"), _money(pl.col("amount_cents")).alias("amount"),
    )}

    # ------------------------------------------------ deposit
    books.headers["deposit"] = bank_now.select(
        pl.col("netsuite_id").alias("id"),
        (pl.lit("DEP") + pl.col("netsuite_id").cast(pl.String)).alias("tranId"),
        pl.col("txn_date").alias("tranDate"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        _seconds(pl.col("created_at")).alias("lastModifiedDate"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.when(pl.col("type") == "SPEND").then(-pl.col("amount_cents")).otherwise(pl.col("amount_cents"))).alias("total"),
        pl.col("bank_account_code").alias("account"),
        pl.col("bank_account_code").alias("_accountName"),
        pl.col("payout_reference").alias("memo"),
        pl.col("payout_reference").alias("externalId"),
        pl.col("reference").alias("custbody_bank_reference"),
        pl.col("channel").alias("custbody_sales_channel"),
    )
    books.extra_sublists["deposit"] = {"payment": payments.filter(pl.col("_deposit_id").is_not_null()).select(
        pl.col("_deposit_id").alias("_parent"),
        pl.int_range(1, pl.len() + 1).over("_deposit_id").alias("line"),
        pl.col("netsuite_id").alias("doc"), pl.lit(True).alias("deposit"), _money(pl.col("amount_cents")).alias("paymentAmount"),
    )}

    # ------------------------------------------------ purchaseOrder
    suppliers = w.table("suppliers")
    received_lines = (
        w.table("receiving_orders").filter(pl.col("completed_at") <= now).select("wro_id", "po_id")
        .join(w.table("receiving_lines"), on="wro_id").group_by(["po_id", "sku"]).agg(pl.col("received_quantity").sum().alias("_received"))
    )
    pos = (
        w.table("purchase_orders").filter(pl.col("ordered_at") <= now)
        .join(suppliers.select("supplier_id", pl.col("netsuite_id").alias("_vid"), pl.col("name").alias("_vname")), on="supplier_id", how="left")
        .with_columns(_received_at=_upto(pl.col("received_at"), now))
        .with_columns(
            status=pl.when(pl.col("_received_at").is_not_null()).then(pl.lit("Pending Bill")).otherwise(pl.lit("Pending Receipt")),
            lastModifiedDate=_seconds(pl.max_horizontal("ordered_at", "_received_at")),
        )
    )
    books.headers["purchaseOrder"] = pos.select(
        pl.col("netsuite_id").alias("id"),
        pl.col("po_number").alias("tranId"),
        pl.col("ordered_at").dt.date().alias("tranDate"),
        pl.col("expected_arrival_date").alias("dueDate"),
        _seconds(pl.col("ordered_at")).alias("createdDate"),
        "lastModifiedDate",
        "status",
        pl.col("_vid").alias("entity"),
        pl.col("_vname").alias("_entityName"),
        pl.lit("vendor").alias("_entityType"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        _money(pl.col("total_cents")).alias("total"),
        pl.lit(None, dtype=pl.String).alias("memo"),
        pl.col("po_number").alias("externalId"),
    )
    po_ids = pos.select("po_id", pl.col("netsuite_id").alias("_parent"), "_received_at")
    books.lines["purchaseOrder"] = (
        w.table("po_lines").join(po_ids, on="po_id").join(variants, on="sku", how="left")
        .join(received_lines, on=["po_id", "sku"], how="left")
        .select(
            "_parent",
            (pl.col("line_index") + 1).alias("line"),
            pl.col("_item_id").alias("item"),
            pl.col("sku").alias("_itemName"),
            pl.col("quantity").cast(pl.Float64),
            _money(pl.col("unit_cost_cents")).alias("rate"),
            _money(pl.col("quantity") * pl.col("unit_cost_cents")).alias("amount"),
            pl.when(pl.col("_received_at").is_null()).then(0).otherwise(pl.coalesce("_received", "quantity")).cast(pl.Float64).alias("quantityReceived"),
            pl.lit(0.0).alias("quantityBilled"),
            pl.col("_received_at").is_not_null().alias("isClosed"),
        )
    )

    # ------------------------------------------------ entities and items
    books.headers["journalEntry"] = pl.DataFrame(schema={
        "id": pl.Int64, "tranId": pl.String, "tranDate": pl.Date, "createdDate": UTC_DT, "lastModifiedDate": UTC_DT,
        "status": pl.String, "currency": pl.Int64, "total": pl.Float64, "memo": pl.String, "externalId": pl.String,
    })
    books.headers["customer"] = w.table("contacts").filter((pl.col("kind") == "customer") & (pl.col("created_at") <= now)).select(
        pl.col("netsuite_id").alias("id"),
        pl.col("name").alias("entityId"),
        pl.col("name").alias("companyName"),
        pl.col("email"),
        pl.lit(False).alias("isPerson"),
        pl.lit(False).alias("isInactive"),
        _seconds(pl.col("created_at")).alias("dateCreated"),
        _seconds(pl.col("created_at")).alias("lastModifiedDate"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        pl.lit(SUBSIDIARY_ID).cast(pl.Int64).alias("subsidiary"),
        pl.col("contact_uuid").alias("externalId"),
    )
    books.headers["vendor"] = suppliers.filter(pl.col("created_at") <= now).select(
        pl.col("netsuite_id").alias("id"),
        pl.col("name").alias("entityId"),
        pl.col("name").alias("companyName"),
        pl.col("email"),
        pl.lit(False).alias("isPerson"),
        pl.lit(False).alias("isInactive"),
        (pl.lit("Net ") + pl.col("payment_terms_days").cast(pl.String)).alias("terms"),
        _seconds(pl.col("created_at")).alias("dateCreated"),
        _seconds(pl.col("created_at")).alias("lastModifiedDate"),
        pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
        pl.lit(SUBSIDIARY_ID).cast(pl.Int64).alias("subsidiary"),
        pl.col("country").alias("custentity_country"),
        pl.col("supplier_id").cast(pl.String).alias("externalId"),
    )
    products = w.table("products").select("product_id", pl.col("title").alias("_ptitle"), "discontinued_at")
    items = (
        w.table("variants").filter(pl.col("created_at") <= now).join(products, on="product_id", how="left")
        .join(suppliers.select("supplier_id", pl.col("netsuite_id").alias("_vid"), pl.col("name").alias("_vname")), on="supplier_id", how="left")
        .with_columns(_disc=_upto(pl.col("discontinued_at"), now), _upd=_upto(pl.col("updated_at"), now))
    )
    books.headers["inventoryItem"] = items.select(
        pl.col("netsuite_item_id").alias("id"),
        pl.col("sku").alias("itemId"),
        (pl.col("_ptitle") + pl.lit(" - ") + pl.col("title")).alias("displayName"),
        pl.col("barcode").alias("upcCode"),
        _money(pl.col("unit_cost_cents")).alias("cost"),
        _money(pl.col("price_cents")).alias("basePrice"),
        pl.col("weight_grams").cast(pl.Float64).alias("weight"),
        pl.lit("g").alias("weightUnit"),
        pl.col("_vid").alias("preferredVendor"),
        pl.col("_vname").alias("_vendorName"),
        pl.col("_disc").is_not_null().alias("isInactive"),
        _seconds(pl.col("created_at")).alias("createdDate"),
        _seconds(pl.max_horizontal("created_at", "_upd", "_disc")).alias("lastModifiedDate"),
        pl.col("sku").alias("externalId"),
    )
    return books


# ---------------------------------------------------------------- rendering
def _format_value(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def reference(base: str, record_type: str | None, ref_id, name: str | None) -> dict:
    """A NetSuite reference object ``{id, refName, links}``."""
    out: dict = {"id": str(ref_id)}
    if record_type:
        out["links"] = [{"rel": "self", "href": f"{base}/services/rest/record/v1/{record_type.lower()}/{ref_id}"}]
    if name is not None:
        out["refName"] = name
    return out


def render_header(record_type: str, row: dict, base: str) -> dict:
    """A header row as NetSuite JSON: camelCase fields, references, enums, ISO dates, numbers."""
    out: dict = {}
    for key, value in row.items():
        if key.startswith("_") or value is None:
            continue  # NetSuite leaves empty fields out of the record
        if key == "id":
            out["id"] = str(value)
        elif key == "status":
            out["status"] = {"id": value, "refName": value}
            code = STATUS_CODES.get(record_type, {}).get(value)
            if record_type in ("salesOrder", "purchaseOrder") and code:
                out["orderStatus"] = {"id": code, "refName": value}
            if record_type == "itemFulfillment" and code:
                out["shipStatus"] = {"id": code, "refName": value}
        elif key == "entity":
            out["entity"] = reference(base, row.get("_entityType") or "customer", value, row.get("_entityName"))
        elif key == "customer":
            out["customer"] = reference(base, "customer", value, row.get("_entityName"))
        elif key == "createdFrom":
            out["createdFrom"] = reference(base, row.get("_createdFromType"), value, row.get("_createdFromName"))
        elif key == "currency":
            out["currency"] = reference(base, "currency", value, CURRENCY_NAME)
        elif key == "subsidiary":
            out["subsidiary"] = reference(base, "subsidiary", value, SUBSIDIARY_NAME)
        elif key == "account":
            out["account"] = {"id": str(value), "refName": row.get("_accountName") or str(value)}
        elif key == "preferredVendor":
            out["preferredVendor"] = reference(base, "vendor", value, row.get("_vendorName"))
        elif key in ("terms", "shipMethod"):
            out[key] = {"id": str(value), "refName": value}
        elif key == "custbody_deposit":
            out[key] = reference(base, "deposit", value, None)
        else:
            out[key] = _format_value(value)
    if record_type in TRANSACTION_TYPES:
        out.setdefault("exchangeRate", 1.0)
        out.setdefault("subsidiary", reference(base, "subsidiary", SUBSIDIARY_ID, SUBSIDIARY_NAME))
    return out


def render_line(record_type: str, sublist: str, parent_id, row: dict, base: str) -> dict:
    """One sublist line: references as objects, its own self link."""
    out: dict = {"links": [{"rel": "self", "href": f"{base}/services/rest/record/v1/{record_type.lower()}/{parent_id}/{sublist}/{row.get('line')}"}]}
    for key, value in row.items():
        if key.startswith("_") or value is None:
            continue
        if key == "item":
            name = row.get("_itemName")
            item_type = "inventoryItem" if value not in (SHIPPING_ITEM[0], DISCOUNT_ITEM[0]) else "otherChargeSaleItem"
            out["item"] = reference(base, item_type, value, name)
            out["itemType"] = {"id": "InvtPart" if item_type == "inventoryItem" else "OthCharge",
                               "refName": "InvtPart" if item_type == "inventoryItem" else "OthCharge"}
        elif key == "doc":
            target = {"creditMemo": "invoice", "customerPayment": "invoice", "deposit": "customerPayment"}.get(record_type)
            out["doc"] = reference(base, target, value, None)
        else:
            out[key] = _format_value(value)
    return out
