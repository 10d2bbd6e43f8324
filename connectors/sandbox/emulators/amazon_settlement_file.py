"""The V2 settlement flat file (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``) as Amazon writes it.

Tab-delimited, one header row, then one summary row for the settlement (id, period, deposit
date, total and currency filled, every other column blank), then one row per amount component
with only ``settlement-id`` repeated from the summary columns. Money sits in the three
general-purpose columns ``amount-type`` / ``amount-description`` / ``amount``; fees and refunds
are negative.
"""
from __future__ import annotations

from datetime import datetime

# The 23 columns of Amazon's field list, in order, then ``promotion-id``, which real files carry
# as a 24th column after ``quantity-purchased``.
SETTLEMENT_V2_COLUMNS: tuple[str, ...] = (
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "amount-type",
    "amount-description",
    "amount",
    "fulfillment-id",
    "posted-date",
    "posted-date-time",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
    "promotion-id",
)

SETTLEMENT_REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"


def settlement_amount(cents: int | None) -> str:
    """Cents as the file writes money: two decimals, a leading minus for negatives, blank for null."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d}"


def settlement_datetime(instant: datetime | None) -> str:
    """An instant as ``2026-10-01 00:00:00 UTC`` (blank for null)."""
    if instant is None:
        return ""
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC")


def settlement_posted_date(instant: datetime | None) -> str:
    """``posted-date`` in the V2 file's short form, MM/DD/YY (blank for null).

    Amazon's announcement of the V2 file describes ``posted-date`` as MM/DD/YY beside
    ``posted-date-time`` as ``YYYY-MM-DD HH:MM:SS UTC``.
    """
    if instant is None:
        return ""
    return instant.strftime("%m/%d/%y")


def _cell(value) -> str:
    if value is None:
        return ""
    # a tab or newline inside a value would break the row; Amazon's own values never hold one
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def render_settlement_flat_file(settlement: dict, lines: list[dict]) -> str:
    """The whole flat file for one settlement.

    ``settlement`` is a row of the world's ``settlements`` table and ``lines`` its
    ``settlement_lines`` rows (any order; they are written in ``line_no`` order).
    """
    settlement_id = str(settlement["settlement_id"])
    summary = {
        "settlement-id": settlement_id,
        "settlement-start-date": settlement_datetime(settlement["start_at"]),
        "settlement-end-date": settlement_datetime(settlement["end_at"]),
        "deposit-date": settlement_datetime(settlement["deposit_at"]),
        "total-amount": settlement_amount(settlement["total_cents"]),
        "currency": settlement["currency"] or "",
    }
    rows = ["\t".join(SETTLEMENT_V2_COLUMNS), "\t".join(summary.get(c, "") for c in SETTLEMENT_V2_COLUMNS)]
    for line in sorted(lines, key=lambda r: r["line_no"]):
        quantity = line.get("quantity_purchased")
        cells = {
            "settlement-id": settlement_id,
            "transaction-type": _cell(line.get("transaction_type")),
            "order-id": _cell(line.get("order_id")),
            "merchant-order-id": _cell(line.get("merchant_order_id")),
            "adjustment-id": _cell(line.get("adjustment_id")),
            "shipment-id": _cell(line.get("shipment_id")),
            "marketplace-name": _cell(line.get("marketplace_name")),
            "amount-type": _cell(line.get("amount_type")),
            "amount-description": _cell(line.get("amount_description")),
            "amount": settlement_amount(line.get("amount_cents")),
            "fulfillment-id": _cell(line.get("fulfillment_id")),
            "posted-date": settlement_posted_date(line.get("posted_at")),
            "posted-date-time": settlement_datetime(line.get("posted_at")),
            "order-item-code": _cell(line.get("order_item_code")),
            "sku": _cell(line.get("sku")),
            "quantity-purchased": "" if quantity is None else str(int(quantity)),
            "promotion-id": _cell(line.get("promotion_id")),
        }
        rows.append("\t".join(cells.get(c, "") for c in SETTLEMENT_V2_COLUMNS))
    return "\n".join(rows) + "\n"
