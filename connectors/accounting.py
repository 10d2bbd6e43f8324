"""The accounting entities closeloop reads, in one shape whichever system keeps the books.

Xero and NetSuite land in their own raw tables (``raw.xero__invoices``,
``raw.netsuite__invoices``), each with its full payload, but with the same typed columns,
so everything downstream reads either without knowing which one the brand uses
(``ACCOUNTING_SYSTEM``).
"""
from __future__ import annotations

from typing import Any, Callable

from .records import Field, RecordShape

Path = str | Callable[[dict], Any]

# entity -> typed columns (name, kind, required, extra rules) in the order they appear
CANONICAL: dict[str, list[tuple[str, str, bool, dict]]] = {
    "invoices": [("invoice_id", "text", True, {}), ("updated_at", "instant", True, {}),
                 ("invoice_number", "text", True, {}), ("reference", "text", False, {}), ("contact_id", "text", False, {}),
                 ("status", "text", True, {}), ("currency", "text", False, {"currency": True}), ("total", "money", True, {}),
                 ("amount_due", "money", False, {}), ("issued_on", "date", False, {})],
    "credit_notes": [("credit_note_id", "text", True, {}), ("updated_at", "instant", True, {}),
                     ("credit_note_number", "text", False, {}), ("invoice_id", "text", False, {}), ("status", "text", False, {}),
                     ("currency", "text", False, {"currency": True}), ("total", "money", True, {}), ("issued_on", "date", False, {})],
    "payments": [("payment_id", "text", True, {}), ("updated_at", "instant", True, {}), ("invoice_id", "text", False, {}),
                 ("amount", "money", True, {}), ("reference", "text", False, {}), ("paid_on", "date", False, {}),
                 ("status", "text", False, {})],
    "deposits": [("deposit_id", "text", True, {}), ("updated_at", "instant", True, {}), ("direction", "text", True, {}),
                 ("reference", "text", False, {}), ("amount", "money", True, {"non_negative": True}),
                 ("currency", "text", False, {"currency": True}), ("deposited_on", "date", False, {}), ("status", "text", False, {})],
    "purchase_orders": [("purchase_order_id", "text", True, {}), ("updated_at", "instant", True, {}),
                        ("po_number", "text", True, {}), ("supplier_id", "text", False, {}), ("status", "text", True, {}),
                        ("currency", "text", False, {"currency": True}), ("total", "money", False, {}),
                        ("ordered_on", "date", False, {}), ("expected_on", "date", False, {})],
    "contacts": [("contact_id", "text", True, {}), ("updated_at", "instant", False, {}), ("name", "text", True, {}),
                 ("is_supplier", "text", False, {}), ("email", "text", False, {})],
    "items": [("item_id", "text", True, {}), ("updated_at", "instant", False, {}), ("sku", "text", True, {}),
              ("name", "text", False, {})],
    "journals": [("journal_id", "text", True, {}), ("updated_at", "instant", True, {}), ("narration", "text", False, {}),
                 ("journal_date", "date", False, {}), ("status", "text", False, {})],
}


def canonical_shape(entity: str, paths: dict[str, Path]) -> RecordShape:
    """The entity's shape with each canonical column read from ``paths`` (one per column)."""
    spec = CANONICAL[entity]
    missing = [name for name, *_ in spec if name not in paths]
    if missing:
        raise ValueError(f"accounting shape {entity}: no path for {missing}")
    fields = [Field(name, paths[name], kind, required, **extra) for name, kind, required, extra in spec]
    key, updated = fields[0], fields[1]
    return RecordShape(key=key, updated_at=updated, fields=tuple(fields[2:]))
