"""Xero Accounting API: OAuth 2.0 (client credentials or refresh token), paged reads by
``If-Modified-Since``, the minute and day limits, and ``Idempotency-Key`` on writes."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from .accounting import canonical_shape
from .ingest import Page, Stream
from .pacing import SlidingWindowPacer, rate_limit_scale
from .transport import ApiClient

PAGE_SIZE = 1000  # Xero's largest page; fewer calls against a 60-a-minute limit
TOKEN_MARGIN = 120  # refresh this many seconds before the token expires


def _require(env, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class XeroSettings:
    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    tenant_id: str
    refresh_token: str | None = None

    @classmethod
    def from_env(cls, env=os.environ) -> "XeroSettings":
        return cls(base_url=_require(env, "XERO_BASE_URL"), token_url=_require(env, "XERO_TOKEN_URL"),
                   client_id=_require(env, "XERO_CLIENT_ID"), client_secret=_require(env, "XERO_CLIENT_SECRET"),
                   tenant_id=_require(env, "XERO_TENANT_ID"), refresh_token=env.get("XERO_REFRESH_TOKEN") or None)

    def __repr__(self) -> str:  # never print the secret
        return f"XeroSettings(base_url={self.base_url!r}, tenant_id={self.tenant_id!r})"


class XeroToken:
    """Access tokens from the identity endpoint, refreshed before they expire.

    Custom connections use client credentials; standard apps exchange a refresh token, which
    Xero rotates on every use, so the latest one is kept for the next exchange.
    """

    def __init__(self, settings: XeroSettings, client: ApiClient):
        self.settings = settings
        self.client = client
        self.refresh_token = settings.refresh_token
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def get(self, force: bool = False) -> str:
        with self.lock:
            if force or self.access_token is None or time.monotonic() > self.expires_at - TOKEN_MARGIN:
                self._exchange()
            return self.access_token

    def _exchange(self) -> None:
        form = ({"grant_type": "refresh_token", "refresh_token": self.refresh_token} if self.refresh_token
                else {"grant_type": "client_credentials",
                      "scope": "accounting.transactions accounting.contacts accounting.settings"})
        # a token request only issues a token, so it is retried like a read
        body = self.client.request("POST", self.settings.token_url, data=form, idempotent=True, authenticated=False,
                                   paced=False, auth=(self.settings.client_id, self.settings.client_secret)).body
        self.access_token = body["access_token"]
        self.expires_at = time.monotonic() + float(body.get("expires_in", 1800))
        if body.get("refresh_token"):
            self.refresh_token = body["refresh_token"]


class XeroClient(ApiClient):
    source = "xero"

    def __init__(self, settings: XeroSettings, **kw):
        scale = rate_limit_scale()
        super().__init__(settings.base_url, headers={"Accept": "application/json", "xero-tenant-id": settings.tenant_id},
                         pacer=kw.pop("pacer", None) or SlidingWindowPacer(60, 60.0 / scale), **kw)
        self.settings = settings
        self.token = XeroToken(settings, self)

    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token.get()}"}

    def on_unauthorized(self) -> bool:
        self.token.get(force=True)
        return True

    def pages(self, resource: str, since: datetime | None, resume: dict | None, paged: bool = True,
              order: str | None = "UpdatedDateUTC ASC") -> Iterator[Page]:
        """Every record of a resource modified since ``since``, a page at a time."""
        headers = {"If-Modified-Since": since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")} if since else {}
        page = (resume or {}).get("page", 1)
        while True:
            params = {"page": page, "pageSize": PAGE_SIZE} if paged else {}
            if order:
                params["order"] = order
            body = self.request("GET", resource, params=params, headers=headers).body or {}
            records = body.get(resource) or []
            total = (body.get("pagination") or {}).get("itemCount")
            more = paged and len(records) >= PAGE_SIZE
            yield Page(records, {"page": page + 1} if more else None, total)
            if not more:
                return
            page += 1

    # ---- writes (write-back)
    def create(self, resource: str, record: dict, idempotency_key: str) -> dict:
        """Create one record; the idempotency key makes a retried create return the same record."""
        body = self.request("PUT", resource, json_body={resource: [record]}, headers={"Idempotency-Key": idempotency_key[:128]},
                            idempotent=True).body
        return (body or {}).get(resource, [{}])[0]


def _date(name: str):
    """Xero sends .NET dates with an ISO companion (``DateString``) on most records; read either."""
    return lambda record: record.get(f"{name}String") or record.get(name)


SHAPES = {
    "invoices": canonical_shape("invoices", {
        "invoice_id": "InvoiceID", "updated_at": "UpdatedDateUTC", "invoice_number": "InvoiceNumber",
        "reference": "Reference", "contact_id": "Contact.ContactID", "status": "Status", "currency": "CurrencyCode",
        "total": "Total", "amount_due": "AmountDue", "issued_on": _date("Date")}),
    "credit_notes": canonical_shape("credit_notes", {
        "credit_note_id": "CreditNoteID", "updated_at": "UpdatedDateUTC", "credit_note_number": "CreditNoteNumber",
        "invoice_id": lambda r: ((r.get("Allocations") or [{}])[0].get("Invoice") or {}).get("InvoiceID"),
        "status": "Status", "currency": "CurrencyCode", "total": "Total",
        "issued_on": _date("Date")}),
    "payments": canonical_shape("payments", {
        "payment_id": "PaymentID", "updated_at": "UpdatedDateUTC", "invoice_id": "Invoice.InvoiceID", "amount": "Amount",
        "reference": "Reference", "paid_on": _date("Date"), "status": "Status"}),
    "deposits": canonical_shape("deposits", {
        "deposit_id": "BankTransactionID", "updated_at": "UpdatedDateUTC",
        "direction": lambda r: {"RECEIVE": "in", "SPEND": "out"}.get(r.get("Type"), r.get("Type")),
        "reference": "Reference", "amount": "Total", "currency": "CurrencyCode",
        "deposited_on": _date("Date"), "status": "Status"}),
    "purchase_orders": canonical_shape("purchase_orders", {
        "purchase_order_id": "PurchaseOrderID", "updated_at": "UpdatedDateUTC", "po_number": "PurchaseOrderNumber",
        "supplier_id": "Contact.ContactID", "status": "Status", "currency": "CurrencyCode", "total": "Total",
        "ordered_on": _date("Date"),
        "expected_on": _date("DeliveryDate")}),
    "contacts": canonical_shape("contacts", {
        "contact_id": "ContactID", "updated_at": "UpdatedDateUTC", "name": "Name",
        "is_supplier": lambda r: None if r.get("IsSupplier") is None else str(bool(r.get("IsSupplier"))).lower(),
        "email": "EmailAddress"}),
    "items": canonical_shape("items", {"item_id": "ItemID", "updated_at": "UpdatedDateUTC", "sku": "Code", "name": "Name"}),
    "journals": canonical_shape("journals", {
        "journal_id": "ManualJournalID", "updated_at": "UpdatedDateUTC", "narration": "Narration",
        "journal_date": _date("Date"), "status": "Status"}),
}

RESOURCES = {"invoices": "Invoices", "credit_notes": "CreditNotes", "payments": "Payments", "deposits": "BankTransactions",
             "purchase_orders": "PurchaseOrders", "contacts": "Contacts", "items": "Items", "journals": "ManualJournals"}


def streams(client: XeroClient) -> list[Stream]:
    """One stream per accounting entity, incremental by UpdatedDateUTC."""
    out = []
    for entity, resource in RESOURCES.items():
        paged = resource != "Items"  # Items has no paging in Xero
        # Xero returns every manual journal when 'order' is set, so journals page unordered
        order = None if resource in ("ManualJournals", "Items") else "UpdatedDateUTC ASC"

        # QuantityOnHand moves without UpdatedDateUTC moving, and Items is one unpaged call:
        # read it whole every run
        full_refresh = resource == "Items"

        def read(since, resume, resource=resource, paged=paged, order=order, full_refresh=full_refresh):
            return client.pages(resource, None if full_refresh else since, resume, paged=paged, order=order)

        out.append(Stream("xero", entity, SHAPES[entity], read, description=f"Xero {resource}"))
    return out
