"""Xero Accounting API 2.0 emulator, with the identity token endpoint.

Mounted at ``/xero``:

- ``POST /connect/token`` stands for ``https://identity.xero.com/connect/token``
  (``client_credentials`` for custom connections, ``refresh_token`` with rotation);
- ``/api.xro/2.0/{Resource}`` and ``/api.xro/2.0/{Resource}/{id}`` stand for
  ``https://api.xero.com/api.xro/2.0/...``: GET on Invoices, CreditNotes, PurchaseOrders,
  Payments, BankTransactions, Contacts, Items and ManualJournals; PUT (create) and POST
  (create or update) on Invoices, PurchaseOrders, ManualJournals, BankTransactions, Contacts.

The ledger is rendered as of the sandbox clock (see ``world.py``); records clients write are
kept in ``ctx.store`` under source ``xero`` (entity = resource name) and override or extend
the world's. Rate limits, error bodies, dates (``/Date(ms+0000)/``) and money (JSON numbers)
follow Xero's documentation and its OpenAPI spec (``xero_accounting.yaml``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..world import SHOP_CURRENCY, SHOP_TIMEZONE, as_of, parse_instant
from .state import request_fingerprint
from .throttle import ConcurrencyGate, SlidingWindow
from .xero_where import QueryParseError, compile_where, ms_date_value, parse_order, sort_records

SOURCE = "xero"
PROVIDER_NAME = "closeloop sandbox"
ACCESS_TOKEN_SECONDS = 1800
DEFAULT_PAGE_SIZE = 100
# UNVERIFIED: third-party sources give 1000 as the largest pageSize; larger values are clamped
MAX_PAGE_SIZE = 1000
IDEMPOTENCY_KEY_MAX = 128
DEFAULT_SCOPE = "accounting.transactions accounting.contacts accounting.settings"
TENANT_MINUTE_LIMIT = 60
TENANT_DAY_LIMIT = 5000
TENANT_CONCURRENT_LIMIT = 5
APP_MINUTE_LIMIT = 10000

_ID_NAMESPACE = uuid.UUID("5b0e8a57-6f2d-4c1e-9a63-0c9f3f1d2e77")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SHOP_ZONE = ZoneInfo(SHOP_TIMEZONE)
_OAUTH_ENTITY = "_oauth"  # store entity for tokens, so a restarted sandbox honours them


# ============================================================================ formats
def ms_instant(instant: datetime) -> str:
    """An instant as Xero's .NET JSON date with offset: ``/Date(1541176290160+0000)/``."""
    return f"/Date({(instant - _EPOCH) // timedelta(milliseconds=1)}+0000)/"


def ms_day(day: date) -> str:
    """A calendar day as Xero renders it: midnight UTC, ``/Date(1539993600000+0000)/``."""
    return ms_instant(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))


def day_string(day: date) -> str:
    """The ``DateString`` companion: ``2018-10-20T00:00:00``."""
    return f"{day.isoformat()}T00:00:00"


def envelope_now(instant: datetime) -> str:
    """The envelope ``DateTimeUTC``, which carries no offset: ``/Date(1552326816230)/``."""
    return f"/Date({(instant - _EPOCH) // timedelta(milliseconds=1)})/"


def money(cents: int | None) -> float:
    """Integer cents as the JSON number Xero sends (12.3 for 1230 cents)."""
    return round((cents or 0) / 100, 2)


def derived_uuid(*parts: Any) -> str:
    """A stable UUID for things the world has no id for (line items, accounts)."""
    return str(uuid.uuid5(_ID_NAMESPACE, ":".join(str(p) for p in parts)))


def shop_day(instant: datetime) -> date:
    """The organisation's calendar day of an instant (Xero dates are org-local)."""
    return instant.astimezone(_SHOP_ZONE).date()


# ============================================================================ error bodies
def _problem(status: int, title: str, detail: str, headers: dict | None = None) -> Response:
    # Xero's gateway answers auth, tenant and rate-limit failures as RFC 7807 problem details
    body = {"Type": None, "Title": title, "Status": status, "Detail": detail,
            "Instance": str(uuid.uuid4()), "Extensions": {}}
    return JSONResponse(body, status_code=status, headers=headers)


def _api_exception(status: int, number: int, kind: str, message: str, elements: list | None = None) -> Response:
    body: dict[str, Any] = {"ErrorNumber": number, "Type": kind, "Message": message}
    if elements is not None:
        body["Elements"] = elements
    return JSONResponse(body, status_code=status)


def _query_parse_error(message: str) -> Response:
    return _api_exception(400, 16, "QueryParseException", message)


def throttled(retry_after: float) -> Response:
    """Xero's answer to a caller over the per-tenant minute limit."""
    return Response(
        status_code=429,
        headers={
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-Rate-Limit-Problem": "minute",
            "X-MinLimit-Remaining": "0",
        },
    )


def server_error(status: int) -> Response:
    """A Xero-like 5xx (UNVERIFIED wording; the problem-details shape is Xero's gateway shape)."""
    titles = {500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
              503: "Service Unavailable", 504: "Gateway Timeout"}
    detail = ("An error occurred in Xero. Check the API Status page https://status.developer.xero.com "
              "for current service status.")
    return _problem(status, titles.get(status, "Server Error"), detail)


# ============================================================================ tokens
class TokenIssuer:
    """The identity server: client credentials, rotating refresh tokens, access-token expiry."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.lock = threading.Lock()
        self.access: dict[str, float] = {}  # token digest -> expiry (epoch seconds, real time)

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def current_refresh_token(self) -> str:
        record = self.ctx.store.get(SOURCE, _OAUTH_ENTITY, "refresh_token")
        return record.payload["token"] if record else self.ctx.credentials.xero_refresh_token

    def rotate_refresh_token(self) -> str:
        token = secrets.token_hex(32)
        self.ctx.store.put(SOURCE, _OAUTH_ENTITY, "refresh_token", {"token": token}, at=self.ctx.now())
        return token

    def issue_access_token(self, scope: str) -> tuple[str, int]:
        issued = int(time.time())
        expires = issued + ACCESS_TOKEN_SECONDS

        def part(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

        # shaped like Xero's JWT access tokens; the signature is random (nobody verifies it here)
        token = ".".join([
            part({"alg": "RS256", "kid": "closeloop-sandbox", "typ": "JWT"}),
            part({"nbf": issued, "exp": expires, "iss": "https://identity.xero.com",
                  "aud": "https://identity.xero.com/resources", "client_id": self.ctx.credentials.xero_client_id,
                  "jti": secrets.token_hex(16), "scope": scope.split()}),
            base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
        ])
        digest = self._digest(token)
        with self.lock:
            self.access[digest] = float(expires)
        self.ctx.store.put(SOURCE, _OAUTH_ENTITY, "access:" + digest, {"expires": expires}, at=self.ctx.now())
        return token, ACCESS_TOKEN_SECONDS

    def expiry(self, token: str) -> float | None:
        """The token's expiry (epoch seconds) or None when this server never issued it."""
        digest = self._digest(token)
        with self.lock:
            if digest in self.access:
                return self.access[digest]
        record = self.ctx.store.get(SOURCE, _OAUTH_ENTITY, "access:" + digest)
        if record is None:
            return None
        with self.lock:
            self.access[digest] = float(record.payload["expires"])
        return float(record.payload["expires"])


# ============================================================================ limits
class XeroLimits:
    """Per-tenant 60/minute, 5,000/day and 5 in flight; 10,000/minute for the whole app."""

    def __init__(self, settings):
        self.minute = SlidingWindow(TENANT_MINUTE_LIMIT, 60, settings)
        self.day = SlidingWindow(TENANT_DAY_LIMIT, 86400, settings)
        self.app_minute = SlidingWindow(APP_MINUTE_LIMIT, 60, settings)
        self.gate = ConcurrencyGate(TENANT_CONCURRENT_LIMIT, settings)
        self.scale = settings.scale

    def headers(self) -> dict[str, str]:
        return {
            "X-MinLimit-Remaining": str(self.minute.remaining()),
            "X-DayLimit-Remaining": str(self.day.remaining()),
            "X-AppMinLimit-Remaining": str(self.app_minute.remaining()),
        }

    def admit(self) -> tuple[str, float] | None:
        """Count one call; (problem, retry_after) when a limit refuses it. Holds a gate slot."""
        if not self.gate.enter():
            return "concurrent", 1.0
        for problem, window in (("minute", self.minute), ("day", self.day), ("appminute", self.app_minute)):
            ok, wait = window.try_hit()
            if not ok:
                self.gate.leave()
                return problem, wait
        return None


# ============================================================================ resources
@dataclass(frozen=True)
class ResourceDef:
    name: str  # path segment and list key, e.g. "Invoices"
    key: str  # id field, e.g. "InvoiceID"
    type_name: str  # the .NET type name Xero names in query errors
    number_field: str | None = None  # second lookup key for /{Resource}/{number}
    paged: bool = True
    writable: bool = False


RESOURCES = {
    r.name.lower(): r
    for r in (
        ResourceDef("Invoices", "InvoiceID", "Invoice", "InvoiceNumber", writable=True),
        ResourceDef("CreditNotes", "CreditNoteID", "CreditNote", "CreditNoteNumber"),
        ResourceDef("PurchaseOrders", "PurchaseOrderID", "PurchaseOrder", "PurchaseOrderNumber", writable=True),
        ResourceDef("Payments", "PaymentID", "Payment"),
        ResourceDef("BankTransactions", "BankTransactionID", "BankTransaction", writable=True),
        ResourceDef("Contacts", "ContactID", "Contact", "ContactNumber", writable=True),
        ResourceDef("Items", "ItemID", "Item", "Code", paged=False),
        ResourceDef("ManualJournals", "ManualJournalID", "ManualJournal", writable=True),
    )
}


def _contact_ref(contact_id: str | None, name: str | None) -> dict:
    return {"ContactID": contact_id, "Name": name or "", "Addresses": [], "Phones": [],
            "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": False}


def _account_ref(code: str) -> dict:
    return {"AccountID": derived_uuid("account", code), "Code": code}


BANK_ACCOUNT_NAMES = {"090": "Business Bank Account", "091": "Business Savings Account"}


class LedgerView:
    """The world's ledger rendered as Xero objects as of the sandbox clock (cached per clock)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def world_records(self, resource: str) -> list[dict]:
        builder: Callable[[], list[dict]] = getattr(self, "_render_" + resource.lower())
        return self.ctx.cached((SOURCE, "records", resource), builder)

    def world_index(self, resource: str) -> dict[str, int]:
        key = RESOURCES[resource.lower()].key

        def build() -> dict[str, int]:
            return {r[key].lower(): i for i, r in enumerate(self.world_records(resource))}

        return self.ctx.cached((SOURCE, "index", resource), build)

    # ---------------------------------------------------------------- shared lookups
    def _contact_names(self) -> dict[str, str]:
        def build() -> dict[str, str]:
            names: dict[str, str] = {}
            for table in ("suppliers", "contacts"):
                frame = self.ctx.world.table(table)
                for cid, name in zip(frame["contact_uuid"].to_list(), frame["name"].to_list()):
                    if cid:
                        names[cid] = name
            return names

        return self.ctx.cached((SOURCE, "contact_names"), build)

    def _now(self) -> datetime:
        return self.ctx.now()

    # ---------------------------------------------------------------- Invoices
    def _render_invoices(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        invoices = as_of(world.table("invoices"), "created_at", now).sort(["created_at", "invoice_number"])
        if invoices.is_empty():
            return []
        keys = invoices.select("invoice_uuid")
        lines = world.table("invoice_lines").join(keys, on="invoice_uuid", how="semi").sort(["invoice_uuid", "line_index"])
        payments = as_of(world.table("payments"), "created_at", now).join(keys, on="invoice_uuid", how="semi")
        credits = as_of(world.table("credit_notes"), "created_at", now).join(keys, on="invoice_uuid", how="semi")
        names = self._contact_names()

        lines_by: dict[str, list[dict]] = {}
        for row in lines.iter_rows(named=True):
            lines_by.setdefault(row["invoice_uuid"], []).append(self._line_item(row["invoice_uuid"], row))
        events_by: dict[str, list[tuple]] = {}
        for row in payments.sort("created_at").iter_rows(named=True):
            events_by.setdefault(row["invoice_uuid"], []).append(("payment", row))
        for row in credits.sort("created_at").iter_rows(named=True):
            events_by.setdefault(row["invoice_uuid"], []).append(("credit", row))

        out = []
        for inv in invoices.iter_rows(named=True):
            uid = inv["invoice_uuid"]
            events = sorted(events_by.get(uid, []), key=lambda e: e[1]["created_at"])
            total = inv["total_cents"] or 0
            paid = credited = 0
            fully_paid_on: date | None = None
            updated = inv["created_at"]
            payment_refs, credit_refs = [], []
            for kind, ev in events:
                updated = max(updated, ev["created_at"])
                if kind == "payment":
                    paid += ev["amount_cents"] or 0
                    payment_refs.append({
                        "PaymentID": ev["payment_uuid"], "Date": ms_day(ev["payment_date"]),
                        "Amount": money(ev["amount_cents"]), "Reference": ev["reference"] or "",
                        "CurrencyRate": 1.0, "HasAccount": True, "HasValidationErrors": False,
                    })
                    on_day = ev["payment_date"]
                else:
                    credited += ev["total_cents"] or 0
                    credit_refs.append({
                        "CreditNoteID": ev["credit_note_uuid"], "CreditNoteNumber": ev["credit_note_number"],
                        "AppliedAmount": money(ev["total_cents"]), "Date": ms_day(ev["credit_date"]),
                        "DateString": day_string(ev["credit_date"]), "Total": money(ev["total_cents"]),
                        "LineItems": [], "HasErrors": False,
                    })
                    on_day = ev["credit_date"]
                if fully_paid_on is None and total > 0 and paid + credited >= total:
                    fully_paid_on = on_day
            voided = inv["voided_at"] is not None and inv["voided_at"] <= now
            if voided:
                updated = max(updated, inv["voided_at"])
                status, due = "VOIDED", 0
            elif total <= 0:
                status, due, fully_paid_on = "PAID", 0, inv["invoice_date"]
            elif fully_paid_on is not None:
                status, due = "PAID", 0
            else:
                status, due = "AUTHORISED", total - paid - credited
            record = {
                "Type": "ACCREC",
                "InvoiceID": uid,
                "InvoiceNumber": inv["invoice_number"],
                "Reference": inv["channel_order_id"] or "",
                "Payments": payment_refs,
                "CreditNotes": credit_refs,
                "Prepayments": [],
                "Overpayments": [],
                "AmountDue": money(due),
                "AmountPaid": money(paid),
                "AmountCredited": money(credited),
                "SentToContact": True,
                "CurrencyRate": 1.0,
                "IsDiscounted": False,
                "HasAttachments": False,
                "HasErrors": False,
                "Contact": _contact_ref(inv["contact_uuid"], names.get(inv["contact_uuid"])),
                "DateString": day_string(inv["invoice_date"]),
                "Date": ms_day(inv["invoice_date"]),
                "DueDateString": day_string(inv["due_date"]),
                "DueDate": ms_day(inv["due_date"]),
                "Status": status,
                "LineAmountTypes": "Exclusive",
                "LineItems": lines_by.get(uid, []),
                "SubTotal": money(inv["subtotal_cents"]),
                "TotalTax": money(inv["tax_cents"]),
                "Total": money(total),
                "UpdatedDateUTC": ms_instant(updated),
                "CurrencyCode": inv["currency"] or SHOP_CURRENCY,
            }
            if status == "PAID" and fully_paid_on is not None:
                record["FullyPaidOnDate"] = ms_day(fully_paid_on)
            out.append(record)
        return out

    @staticmethod
    def _line_item(parent: str, row: dict) -> dict:
        item = {
            "LineItemID": derived_uuid(parent, "line", row["line_index"]),
            "Description": row.get("description") or "",
            "Quantity": float(row["quantity"] or 0),
            "UnitAmount": money(row["unit_amount_cents"]),
            "AccountCode": row.get("account_code") or "200",
            "TaxType": "OUTPUT" if (row.get("tax_cents") or 0) else "NONE",
            "TaxAmount": money(row.get("tax_cents")),
            "LineAmount": money(row["line_amount_cents"]),
            "Tracking": [],
        }
        if row.get("sku"):
            item["ItemCode"] = row["sku"]
        return item

    # ---------------------------------------------------------------- CreditNotes
    def _render_creditnotes(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        credits = as_of(world.table("credit_notes"), "created_at", now).sort(["created_at", "credit_note_number"])
        if credits.is_empty():
            return []
        invoices = world.table("invoices").select("invoice_uuid", "invoice_number", "contact_uuid", "currency")
        credits = credits.join(invoices, on="invoice_uuid", how="left")
        names = self._contact_names()
        out = []
        for row in credits.iter_rows(named=True):
            cid = row["credit_note_uuid"]
            total = money(row["total_cents"])
            out.append({
                "Type": "ACCRECCREDIT",
                "CreditNoteID": cid,
                "CreditNoteNumber": row["credit_note_number"],
                "Reference": f"Refund {row['refund_id']}" if row["refund_id"] is not None else "",
                "Contact": _contact_ref(row["contact_uuid"], names.get(row["contact_uuid"])),
                "DateString": day_string(row["credit_date"]),
                "Date": ms_day(row["credit_date"]),
                "Status": "PAID",
                "LineAmountTypes": "Exclusive",
                "LineItems": [{
                    "LineItemID": derived_uuid(cid, "line", 0),
                    "Description": f"Refund on {row['invoice_number']}",
                    "Quantity": 1.0, "UnitAmount": total, "AccountCode": "200", "TaxType": "NONE",
                    "TaxAmount": 0.0, "LineAmount": total, "Tracking": [],
                }],
                "SubTotal": total,
                "TotalTax": 0.0,
                "Total": total,
                "UpdatedDateUTC": ms_instant(row["created_at"]),
                "CurrencyCode": row["currency"] or SHOP_CURRENCY,
                "CurrencyRate": 1.0,
                "FullyPaidOnDate": ms_day(row["credit_date"]),
                "RemainingCredit": 0.0,
                "Allocations": [{
                    "AllocationID": derived_uuid(cid, "allocation"),
                    "Amount": total,
                    "Date": ms_day(row["credit_date"]),
                    "Invoice": {"InvoiceID": row["invoice_uuid"], "InvoiceNumber": row["invoice_number"] or "",
                                "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                                "HasErrors": False, "IsDiscounted": False, "LineItems": []},
                }],
                "Payments": [],
                "SentToContact": False,
                "HasAttachments": False,
                "HasErrors": False,
            })
        return out

    # ---------------------------------------------------------------- Payments
    def _render_payments(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        invoices = as_of(world.table("invoices"), "created_at", now).select(
            "invoice_uuid", "invoice_number", "contact_uuid", "currency")
        payments = as_of(world.table("payments"), "created_at", now).join(invoices, on="invoice_uuid", how="inner")
        payments = payments.sort(["created_at", "payment_uuid"])
        deposited = set(as_of(world.table("bank_transactions"), "created_at", now)["payout_reference"].drop_nulls().to_list())
        names = self._contact_names()
        out = []
        for row in payments.iter_rows(named=True):
            amount = money(row["amount_cents"])
            out.append({
                "PaymentID": row["payment_uuid"],
                "Date": ms_day(row["payment_date"]),
                "BankAmount": amount,
                "Amount": amount,
                "Reference": row["reference"] or "",
                "CurrencyRate": 1.0,
                "PaymentType": "ACCRECPAYMENT",
                "Status": "AUTHORISED",
                "UpdatedDateUTC": ms_instant(row["created_at"]),
                "HasAccount": True,
                # the payout's deposit has reached the bank: the payment is reconciled
                "IsReconciled": (row["reference"] or "") in deposited,
                "HasValidationErrors": False,
                "Account": _account_ref(row["account_code"] or "800"),
                "Invoice": {
                    "Type": "ACCREC",
                    "InvoiceID": row["invoice_uuid"],
                    "InvoiceNumber": row["invoice_number"],
                    "Contact": _contact_ref(row["contact_uuid"], names.get(row["contact_uuid"])),
                    "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                    "HasErrors": False, "IsDiscounted": False, "LineItems": [],
                    "CurrencyCode": row["currency"] or SHOP_CURRENCY,
                },
            })
        return out

    # ---------------------------------------------------------------- BankTransactions
    def _render_banktransactions(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        txns = as_of(world.table("bank_transactions"), "created_at", now).sort(["created_at", "bank_txn_uuid"])
        if txns.is_empty():
            return []
        # the deposit clears the account the channel's payments were booked to
        clearing: dict[str, str] = {}
        for ref, code in zip(world.table("payments")["reference"].to_list(), world.table("payments")["account_code"].to_list()):
            if ref and code:
                clearing.setdefault(ref, code)
        names = self._contact_names()
        out = []
        for row in txns.iter_rows(named=True):
            bid = row["bank_txn_uuid"]
            amount = money(row["amount_cents"])
            code = row["bank_account_code"] or "090"
            out.append({
                "BankTransactionID": bid,
                "Type": row["type"],
                "Contact": _contact_ref(row["contact_uuid"], names.get(row["contact_uuid"])),
                "LineItems": [{
                    "LineItemID": derived_uuid(bid, "line", 0),
                    "Description": f"{(row['channel'] or '').title()} payout {row['payout_reference'] or ''}".strip(),
                    "Quantity": 1.0, "UnitAmount": amount,
                    "AccountCode": clearing.get(row["payout_reference"] or "", "800"),
                    "TaxType": "NONE", "TaxAmount": 0.0, "LineAmount": amount, "Tracking": [],
                }],
                "BankAccount": {"AccountID": derived_uuid("account", code), "Code": code,
                                "Name": BANK_ACCOUNT_NAMES.get(code, "Business Bank Account")},
                "IsReconciled": True,
                "DateString": day_string(row["txn_date"]),
                "Date": ms_day(row["txn_date"]),
                "Reference": row["reference"] or "",
                "CurrencyCode": SHOP_CURRENCY,
                "CurrencyRate": 1.0,
                "Status": "AUTHORISED",
                "LineAmountTypes": "NoTax",
                "SubTotal": amount,
                "TotalTax": 0.0,
                "Total": amount,
                "UpdatedDateUTC": ms_instant(row["created_at"]),
                "HasAttachments": False,
            })
        return out

    # ---------------------------------------------------------------- Contacts
    def _render_contacts(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        contacts = as_of(world.table("contacts"), "created_at", now)
        suppliers = as_of(world.table("suppliers"), "created_at", now)
        rows: dict[str, dict] = {}
        for row in contacts.sort("created_at").iter_rows(named=True):
            rows[row["contact_uuid"]] = {"id": row["contact_uuid"], "name": row["name"], "email": row["email"],
                                         "created": row["created_at"], "supplier": row["kind"] == "supplier",
                                         "customer": row["kind"] == "customer", "terms": None}
        for row in suppliers.sort("created_at").iter_rows(named=True):
            entry = rows.setdefault(row["contact_uuid"], {"id": row["contact_uuid"], "name": row["name"],
                                                          "email": row["email"], "created": row["created_at"],
                                                          "customer": False})
            entry["supplier"] = True
            entry["terms"] = row["payment_terms_days"]
        out = []
        for entry in sorted(rows.values(), key=lambda e: (e["created"], e["id"])):
            record = {
                "ContactID": entry["id"],
                "ContactStatus": "ACTIVE",
                "Name": entry["name"] or "",
                "EmailAddress": entry["email"] or "",
                "Addresses": [],
                "Phones": [],
                "ContactGroups": [],
                "ContactPersons": [],
                "IsSupplier": bool(entry["supplier"]),
                "IsCustomer": bool(entry["customer"]),
                "DefaultCurrency": SHOP_CURRENCY,
                "UpdatedDateUTC": ms_instant(entry["created"]),
                "HasAttachments": False,
                "HasValidationErrors": False,
            }
            if entry.get("terms"):
                record["PaymentTerms"] = {"Bills": {"Day": int(entry["terms"]), "Type": "DAYSAFTERBILLDATE"}}
            out.append(record)
        return out

    # ---------------------------------------------------------------- Items
    def _render_items(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        variants = as_of(world.table("variants"), "created_at", now).sort(["created_at", "sku"])
        products = world.table("products").select("product_id", pl.col("title").alias("product_title"))
        variants = variants.join(products, on="product_id", how="left")
        # stock as of the last end of day before the clock (inventory_daily is end-of-day)
        stock = world.table("inventory_daily").filter(pl.col("date") < now.date())
        on_hand: dict[str, int] = {}
        if not stock.is_empty():
            latest = stock.sort("date").group_by("sku").agg(pl.col("on_hand").last())
            on_hand = dict(zip(latest["sku"].to_list(), latest["on_hand"].to_list()))
        out = []
        for row in variants.iter_rows(named=True):
            tracked = not row["is_bundle"]
            title = row["product_title"] or ""
            if row["title"] and row["title"] not in ("Default Title", title):
                title = f"{title} - {row['title']}"
            updated = row["updated_at"] if row["updated_at"] is not None and row["updated_at"] <= now else row["created_at"]
            record = {
                "ItemID": row["xero_item_uuid"],
                "Code": row["sku"][:30],
                "Name": title[:50],
                "Description": title,
                "PurchaseDescription": title,
                "IsSold": True,
                "IsPurchased": tracked,
                "IsTrackedAsInventory": tracked,
                "SalesDetails": {"UnitPrice": money(row["price_cents"]), "AccountCode": "200", "TaxType": "OUTPUT"},
                "PurchaseDetails": {"UnitPrice": money(row["unit_cost_cents"]), "TaxType": "NONE"},
                "UpdatedDateUTC": ms_instant(updated),
            }
            if tracked:
                record["InventoryAssetAccountCode"] = "630"
                record["PurchaseDetails"]["COGSAccountCode"] = "310"
                quantity = on_hand.get(row["sku"], 0)
                record["QuantityOnHand"] = float(quantity)
                record["TotalCostPool"] = money(quantity * (row["unit_cost_cents"] or 0))
            out.append(record)
        return out

    # ---------------------------------------------------------------- PurchaseOrders
    def _render_purchaseorders(self) -> list[dict]:
        now = self._now()
        world = self.ctx.world
        orders = as_of(world.table("purchase_orders"), "ordered_at", now).sort(["ordered_at", "po_number"])
        if orders.is_empty():
            return []
        suppliers = world.table("suppliers").select("supplier_id", "contact_uuid", pl.col("name").alias("supplier_name"))
        orders = orders.join(suppliers, on="supplier_id", how="left")
        lines_by: dict[int, list[dict]] = {}
        po_lines = world.table("po_lines").join(orders.select("po_id"), on="po_id", how="semi").sort(["po_id", "line_index"])
        for row in po_lines.iter_rows(named=True):
            lines_by.setdefault(row["po_id"], []).append(row)
        out = []
        for row in orders.iter_rows(named=True):
            pid = row["xero_uuid"]
            received = row["received_at"] is not None and row["received_at"] <= now
            updated = row["received_at"] if received else row["ordered_at"]
            items = []
            for line in lines_by.get(row["po_id"], []):
                amount = (line["quantity"] or 0) * (line["unit_cost_cents"] or 0)
                items.append({
                    "LineItemID": derived_uuid(pid, "line", line["line_index"]),
                    "ItemCode": line["sku"],
                    "Description": line["sku"],
                    "Quantity": float(line["quantity"] or 0),
                    "UnitAmount": money(line["unit_cost_cents"]),
                    "AccountCode": "630",
                    "TaxType": "NONE",
                    "TaxAmount": 0.0,
                    "LineAmount": money(amount),
                    "Tracking": [],
                })
            ordered_day = shop_day(row["ordered_at"])
            record = {
                "PurchaseOrderID": pid,
                "PurchaseOrderNumber": row["po_number"],
                "Reference": row["po_number"],
                "Type": "PURCHASEORDER",
                "Contact": _contact_ref(row["contact_uuid"], row["supplier_name"]),
                "DateString": day_string(ordered_day),
                "Date": ms_day(ordered_day),
                "Status": "BILLED" if received else "AUTHORISED",
                "LineAmountTypes": "Exclusive",
                "LineItems": items,
                "SubTotal": money(row["total_cents"]),
                "TotalTax": 0.0,
                "Total": money(row["total_cents"]),
                "CurrencyCode": row["currency"] or SHOP_CURRENCY,
                "CurrencyRate": 1.0,
                "SentToContact": True,
                "IsDiscounted": False,
                "HasAttachments": False,
                "HasErrors": False,
                "UpdatedDateUTC": ms_instant(updated),
            }
            if row["expected_arrival_date"] is not None:
                record["DeliveryDate"] = ms_day(row["expected_arrival_date"])
                record["DeliveryDateString"] = day_string(row["expected_arrival_date"])
                record["ExpectedArrivalDate"] = ms_day(row["expected_arrival_date"])
                record["ExpectedArrivalDateString"] = day_string(row["expected_arrival_date"])
            out.append(record)
        return out

    # ---------------------------------------------------------------- ManualJournals
    def _render_manualjournals(self) -> list[dict]:
        # the world books no manual journals; clients write them (variance journals)
        return []


# ============================================================================ the emulator
class XeroEmulator:
    """Request handling: auth, tenant, limits, reads and writes."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.tokens = TokenIssuer(ctx)
        self.limits = XeroLimits(ctx.throttle)
        self.ledger = LedgerView(ctx)
        self.write_lock = threading.Lock()
        self.known_fields_cache: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- token endpoint
    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id = client_secret = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        else:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        creds = self.ctx.credentials
        if client_id != creds.xero_client_id or client_secret != creds.xero_client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            scope = (form.get("scope") or DEFAULT_SCOPE).strip()
            token, expires = self.tokens.issue_access_token(scope)
            return JSONResponse({"access_token": token, "expires_in": expires, "token_type": "Bearer", "scope": scope},
                                headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        if grant == "refresh_token":
            offered = form.get("refresh_token")
            with self.write_lock:
                if not offered or offered != self.tokens.current_refresh_token():
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                new_refresh = self.tokens.rotate_refresh_token()
            scope = DEFAULT_SCOPE + " offline_access"
            token, expires = self.tokens.issue_access_token(scope)
            return JSONResponse({"access_token": token, "expires_in": expires, "token_type": "Bearer",
                                 "refresh_token": new_refresh, "scope": scope},
                                headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    # ---------------------------------------------------------------- API entry
    async def api(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        expiry = self.tokens.expiry(token) if token else None
        limit_headers = self.limits.headers()
        if expiry is None:
            return self._with(limit_headers, _problem(401, "Unauthorized", "AuthenticationUnsuccessful",
                                                      {"WWW-Authenticate": 'Bearer error="invalid_token"'}))
        if expiry <= time.time():
            stamp = datetime.fromtimestamp(expiry, tz=timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
            return self._with(limit_headers, _problem(401, "Unauthorized", f"TokenExpired: token expired at {stamp}",
                                                      {"WWW-Authenticate": 'Bearer error="invalid_token"'}))
        if request.headers.get("xero-tenant-id", "").strip().lower() != self.ctx.credentials.xero_tenant_id.lower():
            return self._with(limit_headers, _problem(403, "Forbidden", "AuthenticationUnsuccessful"))
        refused = self.limits.admit()
        if refused is not None:
            problem, wait = refused
            headers = self.limits.headers()
            headers.update({"Retry-After": str(max(1, math.ceil(wait))), "X-Rate-Limit-Problem": problem})
            return Response(status_code=429, headers=headers)
        try:
            response = await self._route(request)
        finally:
            self.limits.gate.leave()
        return self._with(self.limits.headers(), response)

    @staticmethod
    def _with(headers: dict[str, str], response: Response) -> Response:
        for key, value in headers.items():
            response.headers[key] = value
        return response

    async def _route(self, request: Request) -> Response:
        resource = RESOURCES.get(request.path_params["resource"].lower())
        if resource is None:
            return PlainTextResponse("The resource you're looking for cannot be found", status_code=404)
        ident = request.path_params.get("ident")
        if request.method == "GET":
            query = dict(request.query_params)
            since = request.headers.get("if-modified-since")
            return await run_in_threadpool(self._read, resource, ident, query, since)
        if not resource.writable:
            return PlainTextResponse("The requested method is not supported for this resource", status_code=405)
        body = await request.body()
        key = request.headers.get("idempotency-key")
        return await run_in_threadpool(self._write_idempotent, resource, ident, request.method,
                                       request.url.path + "?" + request.url.query, body, key,
                                       dict(request.query_params))

    # ---------------------------------------------------------------- records (world + writes)
    def records(self, resource: ResourceDef) -> list[dict]:
        """Every record of a resource as of the clock: the world's, overridden or extended by writes."""
        merged = list(self.ledger.world_records(resource.name))
        index = self.ledger.world_index(resource.name)
        now = self.ctx.now()
        for written in self.ctx.store.all(SOURCE, resource.name):
            if parse_instant(written.created_at) > now:
                continue  # written at a later clock than the one now shown
            position = index.get(written.record_id.lower())
            if position is not None:
                merged[position] = written.payload
            else:
                merged.append(written.payload)
        return merged

    def known_fields(self, resource: ResourceDef, records: list[dict]) -> set[str]:
        cached = self.known_fields_cache.setdefault(resource.name, set())
        for record in records:
            if not record.keys() <= cached:
                cached.update(record.keys())
        return cached | {"UpdatedDateUTC", resource.key}

    def find(self, resource: ResourceDef, ident: str, records: list[dict] | None = None) -> dict | None:
        records = records if records is not None else self.records(resource)
        wanted = ident.strip().lower()
        for record in records:
            if str(record.get(resource.key, "")).lower() == wanted:
                return record
        if resource.number_field:
            for record in records:
                if str(record.get(resource.number_field, "")).lower() == wanted:
                    return record
        return None

    def envelope(self, resource: ResourceDef, records: list[dict], pagination: dict | None = None) -> dict:
        body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": PROVIDER_NAME,
                                "DateTimeUTC": envelope_now(self.ctx.now())}
        if pagination is not None:
            body["pagination"] = pagination
        body[resource.name] = records
        return body

    # ---------------------------------------------------------------- GET
    def _read(self, resource: ResourceDef, ident: str | None, query: dict, since: str | None) -> Response:
        records = self.records(resource)
        if ident is not None:
            found = self.find(resource, ident, records)
            if found is None:
                return PlainTextResponse("The resource you're looking for cannot be found", status_code=404)
            page = self.ctx.faults[SOURCE].mutate([found], (resource.key,))
            return JSONResponse(self.envelope(resource, page))
        try:
            selected = self._filter(resource, records, query, since)
        except QueryParseError as exc:
            return _query_parse_error(str(exc))
        except _BadParameter as exc:
            return PlainTextResponse(str(exc), status_code=400)
        pagination = None
        if resource.paged and ("page" in query or "pageSize" in query):
            page_number = _int_param(query, "page", 1)
            size = _int_param(query, "pageSize", DEFAULT_PAGE_SIZE) if "pageSize" in query else DEFAULT_PAGE_SIZE
            if isinstance(page_number, Response):
                return page_number
            if isinstance(size, Response):
                return size
            page_number = max(1, page_number)
            size = min(max(1, size), MAX_PAGE_SIZE)
            count = len(selected)
            pagination = {"page": page_number, "pageSize": size, "pageCount": math.ceil(count / size), "itemCount": count}
            selected = selected[(page_number - 1) * size: page_number * size]
        elif resource.name == "Invoices":
            # unpaged invoice lists come without line items (Xero shows them with paging only)
            selected = [{k: v for k, v in r.items() if k != "LineItems"} for r in selected]
        if query.get("summaryOnly", "").lower() == "true" and resource.name in ("Invoices", "Contacts"):
            heavy = {"LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments", "Addresses", "Phones",
                     "ContactPersons", "ContactGroups"}
            selected = [{k: v for k, v in r.items() if k not in heavy} for r in selected]
        selected = self.ctx.faults[SOURCE].mutate(selected, (resource.key,))
        return JSONResponse(self.envelope(resource, selected, pagination))

    def _filter(self, resource: ResourceDef, records: list[dict], query: dict, since: str | None) -> list[dict]:
        selected = records
        if since:
            threshold = _parse_if_modified_since(since)
            if threshold is not None:
                selected = [r for r in selected if _updated(r) is not None and _updated(r) > threshold]
        if resource.name == "Invoices":
            selected = _filter_invoice_params(selected, query)
            if query.get("createdByMyApp", "").lower() == "true":
                mine = {w.record_id.lower() for w in self.ctx.store.all(SOURCE, resource.name)}
                selected = [r for r in selected if str(r.get(resource.key, "")).lower() in mine]
        if resource.name == "PurchaseOrders":
            selected = _filter_purchase_order_params(selected, query)
        known = self.known_fields(resource, records)
        where = query.get("where", "").strip()
        if where:
            predicate = compile_where(where, known, resource.type_name)
            selected = [r for r in selected if predicate(r)]
        order = query.get("order", "").strip()
        if order:
            selected = sort_records(selected, parse_order(order, known, resource.type_name))
        return selected

    # ---------------------------------------------------------------- PUT / POST
    def _write_idempotent(self, resource: ResourceDef, ident: str | None, method: str, path: str,
                          body: bytes, key: str | None, query: dict) -> Response:
        with self.write_lock:
            fingerprint = None
            if key is not None:
                if len(key) > IDEMPOTENCY_KEY_MAX:
                    return _problem(400, "Bad Request",
                                    f"Idempotency-Key must be {IDEMPOTENCY_KEY_MAX} characters or fewer")
                fingerprint = request_fingerprint(method, path, body)
                remembered = self.ctx.store.remembered(SOURCE, key)
                if remembered is not None:
                    if remembered.request_hash != fingerprint:
                        # UNVERIFIED wording (third-party); the status 400 is what sources agree on
                        return _problem(400, "Bad Request",
                                        f"Idempotency Key '{key}' is used with a different request")
                    return Response(remembered.body, status_code=remembered.status, media_type="application/json")
            response = self._write(resource, ident, method, body, query)
            if key is not None:
                self.ctx.store.remember(SOURCE, key, fingerprint, response.status_code,
                                        bytes(response.body).decode(), at=self.ctx.now())
            return response

    def _write(self, resource: ResourceDef, ident: str | None, method: str, body: bytes, query: dict) -> Response:
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            payload = None
        if payload is None:
            # UNVERIFIED: Xero's body for unreadable JSON
            return _api_exception(400, 14, "PostDataInvalidException", "Invalid Json data")
        if isinstance(payload, dict) and resource.name in payload:
            elements = payload[resource.name]
        elif isinstance(payload, list):
            elements = payload
        else:
            elements = [payload]
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            return _api_exception(400, 14, "PostDataInvalidException", "Invalid Json data")
        summarize = query.get("summarizeErrors", "true").lower() != "false"
        now = self.ctx.now()
        records = self.records(resource)
        writer = getattr(self, "_build_" + resource.name.lower())
        built: list[tuple[dict, dict | None, list[str]]] = []
        pending_numbers: set[str] = set()
        for element in elements:
            if ident is not None and method == "POST":
                element = {**element, resource.key: ident}
            existing = None
            given_id = element.get(resource.key)
            if given_id:
                existing = self.find(resource, str(given_id), records)
                if existing is None and method == "POST":
                    built.append((element, None, [f"{resource.type_name} with {resource.key} {given_id} could not be found"]))
                    continue
                if existing is not None and method == "PUT":
                    built.append((element, None, [f"{resource.type_name} {given_id} already exists; use POST to update it"]))
                    continue
            elif method == "POST" and resource.number_field and element.get(resource.number_field) and resource.name != "Contacts":
                existing = self.find(resource, str(element[resource.number_field]), records)
            record, errors = writer(element, existing, records, pending_numbers, now)
            built.append((element, record, errors))
        failed = [b for b in built if b[2]]
        if failed and summarize:
            elems = [{**element, "ValidationErrors": [{"Message": m} for m in errors]} for element, _, errors in failed]
            return _api_exception(400, 10, "ValidationException", "A validation exception occurred", elems)
        out = []
        for element, record, errors in built:
            if errors:
                out.append({**element, "StatusAttributeString": "ERROR", "HasErrors": True,
                            "ValidationErrors": [{"Message": m} for m in errors]})
                continue
            # contacts named on a new document are created with it
            for extra_resource, extra in record.pop("_side_records", []):
                self.ctx.store.put(SOURCE, extra_resource, extra[RESOURCES[extra_resource.lower()].key], extra, at=now)
            self.ctx.store.put(SOURCE, resource.name, record[resource.key], record, at=now)
            shown = dict(record)
            if not summarize:
                shown["StatusAttributeString"] = "OK"
            out.append(shown)
        return JSONResponse(self.envelope(resource, out))

    # ---------------------------------------------------------------- write builders
    def _resolve_contact(self, given: Any, errors: list[str], side: list) -> dict | None:
        if not isinstance(given, dict) or not (given.get("ContactID") or given.get("Name")):
            errors.append("A Contact must be specified for this type of transaction")
            return None
        contacts = self.records(RESOURCES["contacts"])
        if given.get("ContactID"):
            found = self.find(RESOURCES["contacts"], str(given["ContactID"]), contacts)
            if found is None:
                errors.append(f"The contact with ContactID {given['ContactID']} could not be found")
                return None
            return _contact_ref(found["ContactID"], found.get("Name"))
        name = str(given["Name"]).strip()
        for contact in contacts:
            if (contact.get("Name") or "").lower() == name.lower():
                return _contact_ref(contact["ContactID"], contact["Name"])
        # Xero creates a contact named on a new document when none matches
        created = self._new_contact({"Name": name}, self.ctx.now())
        side.append(("Contacts", created))
        return _contact_ref(created["ContactID"], name)

    def _item_codes(self) -> set[str]:
        return {str(r.get("Code", "")).lower() for r in self.records(RESOURCES["items"])}

    def _build_lines(self, given: Any, parent: str, errors: list[str], need_account: bool,
                     line_amount_types: str) -> tuple[list[dict], int, int]:
        if not isinstance(given, list):
            return [], 0, 0
        codes = None
        lines, sub_total, tax_total = [], 0, 0
        for i, line in enumerate(given):
            if not isinstance(line, dict):
                errors.append("Line items must be objects")
                continue
            description = str(line.get("Description") or "")
            item_code = line.get("ItemCode")
            if not description and not item_code:
                errors.append("Description needs to be at least 1 char long")
            if item_code:
                codes = codes if codes is not None else self._item_codes()
                if str(item_code).lower() not in codes:
                    errors.append(f"Item code '{item_code}' is not valid")
            try:
                quantity = float(line.get("Quantity", 1) if line.get("Quantity") is not None else 1)
                unit = float(line.get("UnitAmount") or 0)
                tax = float(line.get("TaxAmount") or 0)
                amount = float(line["LineAmount"]) if line.get("LineAmount") is not None and line.get("UnitAmount") is None \
                    else round(quantity * unit, 2)
            except (TypeError, ValueError):
                errors.append("Line item amounts must be numbers")
                continue
            if line_amount_types == "NoTax":
                tax = 0.0
            if need_account and not line.get("AccountCode") and not item_code:
                errors.append("Account code must be specified")
            amount_cents, tax_cents = round(amount * 100), round(tax * 100)
            sub_total += amount_cents - (tax_cents if line_amount_types == "Inclusive" else 0)
            tax_total += tax_cents
            rendered = {
                "LineItemID": str(line.get("LineItemID") or derived_uuid(parent, "line", i, uuid.uuid4())),
                "Description": description or str(item_code or ""),
                "Quantity": quantity,
                "UnitAmount": round(unit, 2),
                "AccountCode": str(line.get("AccountCode") or ""),
                "TaxType": str(line.get("TaxType") or ("NONE" if not tax else "OUTPUT")),
                "TaxAmount": round(tax, 2),
                "LineAmount": round(amount, 2),
                "Tracking": line.get("Tracking") if isinstance(line.get("Tracking"), list) else [],
            }
            if item_code:
                rendered["ItemCode"] = str(item_code)
            lines.append(rendered)
        return lines, sub_total, tax_total

    def _next_number(self, name: str, prefix: str, records: list[dict], field: str, world_numbers: list) -> str:
        """The next document number after every number in use, future world documents included."""
        highest, width = 0, 6
        texts = [str(r.get(field) or "") for r in records] + [str(n or "") for n in world_numbers]
        for text in texts:
            digits = text[len(prefix):]
            if text.startswith(prefix) and digits.isdigit():
                highest, width = max(highest, int(digits)), len(digits)
        return f"{prefix}{self.ctx.store.next_id(name, highest):0{width}d}"

    def _build_invoices(self, given: dict, existing: dict | None, records: list[dict], pending: set[str], now: datetime):
        errors: list[str] = []
        side: list = []
        source = {**(existing or {}), **given}
        if existing is not None and existing.get("Status") in ("PAID", "VOIDED", "DELETED"):
            return None, ["Invoice not of valid status for modification"]
        kind = source.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be specified" if not kind else f"Invoice Type '{kind}' is not supported")
        status = str(source.get("Status") or "DRAFT").upper()
        allowed = ("DRAFT", "SUBMITTED", "AUTHORISED") if existing is None else ("DRAFT", "SUBMITTED", "AUTHORISED", "VOIDED", "DELETED")
        if status not in allowed:
            errors.append("Invoice not of valid status for " + ("creation" if existing is None else "modification"))
        if existing is not None and status == "VOIDED" and existing.get("AmountPaid"):
            errors.append("This document cannot be edited as it has a payment or credit note allocated to it.")
        contact = self._resolve_contact(source.get("Contact"), errors, side)
        invoice_id = str(existing["InvoiceID"]) if existing else str(uuid.uuid4())
        lat = str(source.get("LineAmountTypes") or "Exclusive")
        if lat not in ("Exclusive", "Inclusive", "NoTax"):
            errors.append(f"LineAmountTypes '{lat}' is not valid")
        lines, sub_total, tax_total = self._build_lines(source.get("LineItems") or [], invoice_id, errors,
                                                        status in ("AUTHORISED", "SUBMITTED"), lat)
        if status in ("AUTHORISED", "SUBMITTED") and not lines:
            errors.append("At least one line item must be specified")
        issue_day = _parse_day(source.get("Date"), shop_day(now), errors, "Date")
        due_day = _parse_day(source.get("DueDate"), issue_day, errors, "DueDate")
        number = str(source.get("InvoiceNumber") or "").strip()
        if kind == "ACCREC":
            if number:
                clash = [r for r in records if str(r.get("InvoiceNumber", "")).lower() == number.lower()
                         and r.get("InvoiceID") != invoice_id and r.get("Status") != "DELETED"]
                if clash or number.lower() in pending:
                    errors.append("Invoice # must be unique.")
            elif not errors:
                number = self._next_number("xero_invoice_number", "INV-", records, "InvoiceNumber",
                                           self.ctx.world.table("invoices")["invoice_number"].to_list())
        if errors:
            return None, errors
        pending.add(number.lower())
        total = sub_total + tax_total
        paid = round((existing or {}).get("AmountPaid", 0) * 100)
        credited = round((existing or {}).get("AmountCredited", 0) * 100)
        record = {
            "Type": kind, "InvoiceID": invoice_id, "InvoiceNumber": number,
            "Reference": str(source.get("Reference") or ""),
            "Payments": (existing or {}).get("Payments", []), "CreditNotes": (existing or {}).get("CreditNotes", []),
            "Prepayments": [], "Overpayments": [],
            "AmountDue": money(0 if status in ("VOIDED", "DELETED") else max(0, total - paid - credited)),
            "AmountPaid": money(paid), "AmountCredited": money(credited),
            "SentToContact": bool(source.get("SentToContact", False)), "CurrencyRate": 1.0,
            "IsDiscounted": False, "HasAttachments": False, "HasErrors": False,
            "Contact": contact,
            "DateString": day_string(issue_day), "Date": ms_day(issue_day),
            "DueDateString": day_string(due_day), "DueDate": ms_day(due_day),
            "Status": status, "LineAmountTypes": lat, "LineItems": lines,
            "SubTotal": money(sub_total), "TotalTax": money(tax_total), "Total": money(total),
            "UpdatedDateUTC": ms_instant(now),
            "CurrencyCode": str(source.get("CurrencyCode") or SHOP_CURRENCY),
        }
        if side:
            record["_side_records"] = side
        return record, []

    def _build_purchaseorders(self, given: dict, existing: dict | None, records: list[dict], pending: set[str], now: datetime):
        errors: list[str] = []
        side: list = []
        source = {**(existing or {}), **given}
        status = str(source.get("Status") or "DRAFT").upper()
        allowed = ("DRAFT", "SUBMITTED", "AUTHORISED") if existing is None else ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED")
        if status not in allowed:
            errors.append("Purchase Order not of valid status for " + ("creation" if existing is None else "modification"))
        contact = self._resolve_contact(source.get("Contact"), errors, side)
        po_id = str(existing["PurchaseOrderID"]) if existing else str(uuid.uuid4())
        lat = str(source.get("LineAmountTypes") or "Exclusive")
        lines, sub_total, tax_total = self._build_lines(source.get("LineItems") or [], po_id, errors, False, lat)
        if not lines and not errors:
            errors.append("At least one line item must be specified")
        order_day = _parse_day(source.get("Date"), shop_day(now), errors, "Date")
        delivery = source.get("DeliveryDate")
        delivery_day = _parse_day(delivery, None, errors, "DeliveryDate") if delivery else None
        if errors:
            return None, errors
        number = str(source.get("PurchaseOrderNumber") or "").strip() or \
            self._next_number("xero_po_number", "PO-", records, "PurchaseOrderNumber",
                              self.ctx.world.table("purchase_orders")["po_number"].to_list())
        total = sub_total + tax_total
        record = {
            "PurchaseOrderID": po_id, "PurchaseOrderNumber": number,
            "Reference": str(source.get("Reference") or ""), "Type": "PURCHASEORDER",
            "Contact": contact, "DateString": day_string(order_day), "Date": ms_day(order_day),
            "Status": status, "LineAmountTypes": lat, "LineItems": lines,
            "SubTotal": money(sub_total), "TotalTax": money(tax_total), "Total": money(total),
            "CurrencyCode": str(source.get("CurrencyCode") or SHOP_CURRENCY), "CurrencyRate": 1.0,
            "SentToContact": bool(source.get("SentToContact", False)), "IsDiscounted": False,
            "HasAttachments": False, "HasErrors": False, "UpdatedDateUTC": ms_instant(now),
        }
        for field in ("DeliveryAddress", "AttentionTo", "Telephone", "DeliveryInstructions"):
            if source.get(field):
                record[field] = str(source[field])
        if delivery_day is not None:
            record["DeliveryDate"] = ms_day(delivery_day)
            record["DeliveryDateString"] = day_string(delivery_day)
        if side:
            record["_side_records"] = side
        return record, []

    def _build_manualjournals(self, given: dict, existing: dict | None, records: list[dict], pending: set[str], now: datetime):
        errors: list[str] = []
        source = {**(existing or {}), **given}
        narration = str(source.get("Narration") or "").strip()
        if not narration:
            errors.append("Narration must not be empty")  # UNVERIFIED wording
        status = str(source.get("Status") or "DRAFT").upper()
        if status not in ("DRAFT", "POSTED") + (("DELETED", "VOIDED") if existing else ()):
            errors.append("Manual Journal not of valid status for " + ("creation" if existing is None else "modification"))
        raw_lines = source.get("JournalLines")
        lines, total = [], 0
        if not isinstance(raw_lines, list) or len(raw_lines) < 2:
            errors.append("At least two journal lines must be specified")  # UNVERIFIED wording
            raw_lines = raw_lines if isinstance(raw_lines, list) else []
        debits = credits = 0
        for line in raw_lines:
            if not isinstance(line, dict):
                errors.append("Journal lines must be objects")
                continue
            if not line.get("AccountCode") and not line.get("AccountID"):
                errors.append("Account code must be specified")
            try:
                cents = round(float(line.get("LineAmount")) * 100)
            except (TypeError, ValueError):
                errors.append("Journal line amount must be a number")
                continue
            total += cents
            debits += max(cents, 0)
            credits += max(-cents, 0)
            rendered = {"LineAmount": money(cents), "AccountCode": str(line.get("AccountCode") or ""),
                        "Description": str(line.get("Description") or ""), "TaxType": str(line.get("TaxType") or "NONE"),
                        "TaxAmount": money(round(float(line.get("TaxAmount") or 0) * 100)), "IsBlank": False}
            if line.get("AccountID"):
                rendered["AccountID"] = str(line["AccountID"])
            lines.append(rendered)
        if raw_lines and total != 0 and not errors:
            errors.append(f"The total debits ({money(debits):.2f}) must equal total credits ({money(credits):.2f})")
        journal_day = _parse_day(source.get("Date"), shop_day(now), errors, "Date")
        if errors:
            return None, errors
        return {
            "ManualJournalID": str(existing["ManualJournalID"]) if existing else str(uuid.uuid4()),
            "Narration": narration, "JournalLines": lines,
            "Date": ms_day(journal_day), "DateString": day_string(journal_day),
            "LineAmountTypes": str(source.get("LineAmountTypes") or "NoTax"), "Status": status,
            "ShowOnCashBasisReports": bool(source.get("ShowOnCashBasisReports", True)),
            "HasAttachments": False, "UpdatedDateUTC": ms_instant(now),
        }, []

    def _build_banktransactions(self, given: dict, existing: dict | None, records: list[dict], pending: set[str], now: datetime):
        errors: list[str] = []
        side: list = []
        source = {**(existing or {}), **given}
        kinds = ("RECEIVE", "RECEIVE-OVERPAYMENT", "RECEIVE-PREPAYMENT", "SPEND", "SPEND-OVERPAYMENT", "SPEND-PREPAYMENT")
        kind = source.get("Type")
        if kind not in kinds:
            errors.append("Bank Transaction Type must be specified" if not kind else f"Bank Transaction Type '{kind}' is not valid")
        bank = source.get("BankAccount")
        if not isinstance(bank, dict) or not (bank.get("Code") or bank.get("AccountID")):
            errors.append("A bank account must be specified")
            bank = {}
        contact = self._resolve_contact(source.get("Contact"), errors, side)
        txn_id = str(existing["BankTransactionID"]) if existing else str(uuid.uuid4())
        lat = str(source.get("LineAmountTypes") or "Exclusive")
        raw_lines = source.get("LineItems")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append("At least one line item must be specified")
        lines, sub_total, tax_total = self._build_lines(raw_lines or [], txn_id, errors, True, lat)
        txn_day = _parse_day(source.get("Date"), shop_day(now), errors, "Date")
        status = str(source.get("Status") or "AUTHORISED").upper()
        if status not in ("AUTHORISED", "DELETED", "VOIDED"):
            errors.append("Bank Transaction not of valid status")
        if errors:
            return None, errors
        code = str(bank.get("Code") or "")
        record = {
            "BankTransactionID": txn_id, "Type": kind, "Contact": contact, "LineItems": lines,
            "BankAccount": {"AccountID": str(bank.get("AccountID") or derived_uuid("account", code)), "Code": code,
                            "Name": BANK_ACCOUNT_NAMES.get(code, "Business Bank Account")},
            "IsReconciled": bool(source.get("IsReconciled", False)),
            "DateString": day_string(txn_day), "Date": ms_day(txn_day),
            "Reference": str(source.get("Reference") or ""),
            "CurrencyCode": str(source.get("CurrencyCode") or SHOP_CURRENCY), "CurrencyRate": 1.0,
            "Status": status, "LineAmountTypes": lat,
            "SubTotal": money(sub_total), "TotalTax": money(tax_total), "Total": money(sub_total + tax_total),
            "UpdatedDateUTC": ms_instant(now), "HasAttachments": False,
        }
        if side:
            record["_side_records"] = side
        return record, []

    def _new_contact(self, source: dict, now: datetime, contact_id: str | None = None) -> dict:
        record = {
            "ContactID": contact_id or str(uuid.uuid4()), "ContactStatus": str(source.get("ContactStatus") or "ACTIVE"),
            "Name": str(source.get("Name") or "").strip(), "EmailAddress": str(source.get("EmailAddress") or ""),
            "Addresses": source.get("Addresses") if isinstance(source.get("Addresses"), list) else [],
            "Phones": source.get("Phones") if isinstance(source.get("Phones"), list) else [],
            "ContactGroups": [], "ContactPersons": [],
            "IsSupplier": bool(source.get("IsSupplier", False)), "IsCustomer": bool(source.get("IsCustomer", False)),
            "DefaultCurrency": str(source.get("DefaultCurrency") or SHOP_CURRENCY),
            "UpdatedDateUTC": ms_instant(now), "HasAttachments": False, "HasValidationErrors": False,
        }
        for field in ("FirstName", "LastName", "ContactNumber", "AccountNumber", "TaxNumber"):
            if source.get(field):
                record[field] = str(source[field])
        return record

    def _build_contacts(self, given: dict, existing: dict | None, records: list[dict], pending: set[str], now: datetime):
        source = {**(existing or {}), **given}
        name = str(source.get("Name") or "").strip()
        if not name:
            return None, ["The contact name must be specified"]  # UNVERIFIED wording
        own_id = existing["ContactID"] if existing else None
        clash = [r for r in records if (r.get("Name") or "").lower() == name.lower() and r.get("ContactID") != own_id
                 and r.get("ContactStatus", "ACTIVE") == "ACTIVE"]
        if clash or name.lower() in pending:
            return None, [f"The contact name {name} is already assigned to another contact. "
                          "The contact name must be unique across all active contacts."]
        pending.add(name.lower())
        # IsSupplier / IsCustomer are derived by Xero: an update keeps what the record had
        if existing:
            source["IsSupplier"], source["IsCustomer"] = existing.get("IsSupplier", False), existing.get("IsCustomer", False)
        else:
            source["IsSupplier"] = source["IsCustomer"] = False
        return self._new_contact(source, now, own_id), []


class _BadParameter(ValueError):
    pass


def _int_param(query: dict, name: str, default: int) -> int | Response:
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return PlainTextResponse(f"Supplied parameter '{name}' cannot be parsed - must be of type Int32.", status_code=400)


def _list_param(query: dict, name: str) -> list[str]:
    raw = query.get(name, "")
    return [part.strip().strip('"').strip() for part in raw.split(",") if part.strip().strip('"').strip()]


def _filter_invoice_params(records: list[dict], query: dict) -> list[dict]:
    ids = _list_param(query, "IDs")
    if ids:
        try:
            wanted = {str(uuid.UUID(i)) for i in ids}
        except ValueError:
            raise _BadParameter("Supplied parameter 'IDs' cannot be parsed - must be of type UUID.") from None
        records = [r for r in records if str(r.get("InvoiceID", "")).lower() in wanted]
    numbers = {n.lower() for n in _list_param(query, "InvoiceNumbers")}
    if numbers:
        records = [r for r in records if str(r.get("InvoiceNumber", "")).lower() in numbers]
    contacts = _list_param(query, "ContactIDs")
    if contacts:
        try:
            wanted_contacts = {str(uuid.UUID(i)) for i in contacts}
        except ValueError:
            raise _BadParameter("Supplied parameter 'ContactIDs' cannot be parsed - must be of type UUID.") from None
        records = [r for r in records if str((r.get("Contact") or {}).get("ContactID", "")).lower() in wanted_contacts]
    statuses = {s.upper() for s in _list_param(query, "Statuses")}
    if statuses:
        records = [r for r in records if r.get("Status") in statuses]
    return records


def _filter_purchase_order_params(records: list[dict], query: dict) -> list[dict]:
    status = query.get("Status", "").strip().upper()
    if status:
        records = [r for r in records if r.get("Status") == status]
    for name, keep in (("DateFrom", lambda d, bound: d >= bound), ("DateTo", lambda d, bound: d <= bound)):
        raw = query.get(name, "").strip()
        if raw:
            try:
                bound = date.fromisoformat(raw[:10])
            except ValueError:
                raise _BadParameter(f"Supplied parameter '{name}' cannot be parsed - must be of type DateTime.") from None
            records = [r for r in records if (d := _record_day(r)) is not None and keep(d, bound)]
    return records


def _record_day(record: dict) -> date | None:
    instant = ms_date_value(str(record.get("Date") or ""))
    return instant.date() if instant else None


def _updated(record: dict) -> datetime | None:
    return ms_date_value(str(record.get("UpdatedDateUTC") or ""))


def _parse_if_modified_since(text: str) -> datetime | None:
    """If-Modified-Since as ISO 8601 (the spec's example) or an RFC 1123 HTTP date; naive = UTC."""
    from email.utils import parsedate_to_datetime

    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _parse_day(raw: Any, default: date | None, errors: list[str], field: str) -> date:
    """A date sent by a client: ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm:ss`` or ``/Date(ms)/``."""
    if raw in (None, ""):
        return default or date.today()
    text = str(raw).strip()
    instant = ms_date_value(text)
    if instant is not None:
        return instant.date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        errors.append(f"{field} '{text}' is not a valid date")
        return default or date.today()


def build(ctx) -> Starlette:
    """The Xero app: token endpoint and Accounting API routes, relative to /xero."""
    emulator = XeroEmulator(ctx)
    methods = ["GET", "PUT", "POST"]
    app = Starlette(routes=[
        Route("/connect/token", emulator.token, methods=["POST"]),
        Route("/api.xro/2.0/{resource}", emulator.api, methods=methods),
        Route("/api.xro/2.0/{resource}/{ident}", emulator.api, methods=methods),
    ])
    app.state.emulator = emulator
    return app
