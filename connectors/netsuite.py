"""NetSuite SuiteTalk REST: OAuth 2.0 bearer tokens, SuiteQL for bulk reads, the record service
where SuiteQL lacks a field, concurrency governance, and upsert by external id for write-back.

NetSuite keeps the books when ``ACCOUNTING_SYSTEM=netsuite``: each stream lands the same
canonical entity and typed columns as :mod:`connectors.xero` (see :mod:`connectors.accounting`).

How records are read, and why
- A record-service collection (``GET /record/v1/{type}``) lists only ids, and cannot be ordered,
  so reading 100k invoices that way costs 100k single-record calls, and offsets shift under
  records that change during the read. SuiteQL (``POST /query/v1/suiteql`` with
  ``Prefer: transient``) returns whole rows, 1000 per call, in the order we ask for. So every
  entity is selected with SuiteQL, ``ORDER BY lastmodifieddate, id``, and paged by **keyset**
  (the next query starts after the last row's (lastmodifieddate, id)) rather than by offset:
  the resume point is plain data that survives a crash, and a record that changes mid-read
  moves behind the keyset where this run or the next (lookback) picks it up.
- SuiteQL returns dates without their time, so instants are selected with ``TO_CHAR`` and
  dates with ``TO_CHAR(.., 'YYYY-MM-DD')`` (the account date format is a preference).
  ``TO_CHAR`` renders in the session's time zone (``NETSUITE_TIMEZONE``, default UTC); the
  connector converts to UTC ISO-8601 and puts the result back in the row's ``lastmodified``.
- SuiteQL caps one query at 100,000 rows. Keyset paging keeps each query at "what is left";
  when a query's total would reach the cap, its upper lastmodifieddate bound is halved until
  it fits, so an ordered result is never cut short.
- The record service fills in what the SuiteQL tables do not carry:
  * payments: the invoice a customer payment is applied to lives in its ``apply`` sublist, so
    each payment selected by SuiteQL is read with ``GET customerPayment/{id}?expandSubResources=true``
    and the record is the payload;
  * invoices: the amount remaining is read with ``GET invoice/{id}?fields=amountRemaining`` only
    for invoices not yet settled (an invoice Paid In Full or Voided has nothing remaining),
    and written into the row as ``amountremaining``;
  * currency codes: ISO codes come from SuiteQL's ``currency`` table (``symbol``), read once;
    where that table cannot be queried, from the currency's display name.
  Every other payload is the SuiteQL row as returned (lower-case column names, values as text).

Pacing: NetSuite governs concurrency, not rate. The connection pool allows at most
``NETSUITE_CONCURRENCY`` (default 5) requests in flight (the connector reads sequentially, so
one). 429 and 400 ``SSS_REQUEST_LIMIT_EXCEEDED`` are retried with backoff.

Writes: ``PUT /record/v1/{type}/eid:{externalId}`` upserts purchase orders, invoices and journal
entries; the external id makes a retried write land on the same record, so it is retried.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .accounting import canonical_shape
from .ingest import Page, Stream
from .transport import RETRYABLE_STATUS, ApiClient, RetryPolicy, SourceError, retry_after_seconds

SOURCE = "netsuite"
PAGE_SIZE = 1000  # SuiteQL's largest page
QUERY_ROW_CAP = 100_000  # SuiteQL's most rows for one query
TOKEN_MARGIN = 120  # refresh this many seconds before the token expires
SUITEQL = "services/rest/query/v1/suiteql"
RECORDS = "services/rest/record/v1"
INSTANT_FORMAT = "YYYY-MM-DD HH24:MI:SS"  # TO_CHAR/TO_DATE model for instants
PY_INSTANT_FORMAT = "%Y-%m-%d %H:%M:%S"
# over the account's concurrency limit: 429 for REST, SSS_REQUEST_LIMIT_EXCEEDED as RESTlets say it
LIMIT_CODES = ("SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED")
UPSERT_TYPES = frozenset({"purchaseOrder", "invoice", "journalEntry"})
# invoice status codes with nothing left to pay: B Paid In Full, V Voided
SETTLED_INVOICE_CODES = frozenset({"B", "V"})
# NetSuite's default currency names, for accounts whose currency table cannot be queried
CURRENCY_BY_NAME = {
    "us dollar": "USD", "usa": "USD", "canadian dollar": "CAD", "euro": "EUR", "british pound": "GBP",
    "pound sterling": "GBP", "australian dollar": "AUD", "new zealand dollar": "NZD", "japanese yen": "JPY",
    "swiss franc": "CHF", "swedish krona": "SEK", "norwegian krone": "NOK", "danish krone": "DKK",
    "mexican peso": "MXN", "singapore dollar": "SGD", "hong kong dollar": "HKD", "indian rupee": "INR",
}


def _require(env, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class NetSuiteSettings:
    base_url: str
    token_url: str
    account_id: str
    client_id: str
    client_secret: str
    refresh_token: str | None = None
    concurrency: int = 5
    timezone: str = "UTC"  # the session time zone TO_CHAR renders in

    @classmethod
    def from_env(cls, env=os.environ) -> "NetSuiteSettings":
        raw = env.get("NETSUITE_CONCURRENCY", "5").strip() or "5"
        try:
            concurrency = int(raw)
        except ValueError:
            raise ValueError(f"NETSUITE_CONCURRENCY must be a whole number, got {raw!r}") from None
        if concurrency < 1:
            raise ValueError(f"NETSUITE_CONCURRENCY must be at least 1, got {raw!r}")
        zone = env.get("NETSUITE_TIMEZONE", "UTC").strip() or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"NETSUITE_TIMEZONE must be an IANA time zone name, got {zone!r}") from None
        return cls(base_url=_require(env, "NETSUITE_BASE_URL"), token_url=_require(env, "NETSUITE_TOKEN_URL"),
                   account_id=_require(env, "NETSUITE_ACCOUNT_ID"), client_id=_require(env, "NETSUITE_CLIENT_ID"),
                   client_secret=_require(env, "NETSUITE_CLIENT_SECRET"),
                   refresh_token=env.get("NETSUITE_REFRESH_TOKEN") or None, concurrency=concurrency, timezone=zone)

    def __repr__(self) -> str:  # never print the secret or the refresh token
        return f"NetSuiteSettings(base_url={self.base_url!r}, account_id={self.account_id!r})"


class NetSuiteToken:
    """OAuth 2.0 access tokens from the token endpoint, refreshed before they expire.

    The client authenticates with HTTP Basic (client id and secret). With a refresh token
    configured the refresh-token grant is used, otherwise client credentials; a refresh token
    the endpoint sends back replaces the one we hold.
    """

    def __init__(self, settings: NetSuiteSettings, http: httpx.Client, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.http = http
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.refresh_token = settings.refresh_token
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def get(self, force: bool = False) -> str:
        """A valid access token; a new one when forced or about to expire."""
        with self.lock:
            if force or self.access_token is None or time.monotonic() > self.expires_at - TOKEN_MARGIN:
                self._exchange()
            return self.access_token

    def _exchange(self) -> None:
        """Ask for a token, retrying what can succeed on retry: asking again is harmless."""
        for attempt in range(self.policy.max_attempts):
            try:
                self._exchange_once()
                return
            except SourceError as exc:
                if not exc.retryable or attempt + 1 >= self.policy.max_attempts:
                    raise
                delay = self.policy.backoff(attempt)
                asked = getattr(exc, "retry_after", None)
                self.sleep(max(asked, delay * 0.25 + asked) if asked is not None else delay)

    def _exchange_once(self) -> None:
        url = self.settings.token_url
        form = ({"grant_type": "refresh_token", "refresh_token": self.refresh_token} if self.refresh_token
                else {"grant_type": "client_credentials"})
        try:
            response = self.http.post(url, data=form, auth=(self.settings.client_id, self.settings.client_secret))
        except httpx.HTTPError as exc:
            raise SourceError(SOURCE, "POST", url, None, f"token request failed: {type(exc).__name__}", retryable=True) from exc
        if response.status_code in RETRYABLE_STATUS:
            error = SourceError(SOURCE, "POST", url, response.status_code, "token endpoint busy or failing", retryable=True)
            error.retry_after = retry_after_seconds(response.headers)
            raise error
        if response.status_code != 200:
            # the body is the endpoint's OAuth error ({"error": "invalid_client"}), never our secret
            raise SourceError(SOURCE, "POST", url, response.status_code, f"token refused: {response.text[:200]}")
        try:
            body = response.json()
            self.access_token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(SOURCE, "POST", url, response.status_code, "token response is not a token (truncated?)",
                              retryable=True) from None
        self.expires_at = time.monotonic() + float(body.get("expires_in", 3600))
        if body.get("refresh_token"):
            self.refresh_token = body["refresh_token"]


@dataclass(frozen=True)
class Selection:
    """One SuiteQL selection: the table, its columns and the rows that belong to the entity."""

    table: str
    columns: str  # the select list without lastmodified, with the table aliased ``t``
    where: str = "1 = 1"


@dataclass(frozen=True)
class Keyset:
    """Where a keyset-paged selection continues: after (instant, id), or from an instant on."""

    instant: datetime
    after_id: int | None = None  # None: every row at or after ``instant``

    def to_resume(self) -> dict:
        return {"instant": self.instant.isoformat(), "after_id": self.after_id}

    @classmethod
    def from_resume(cls, raw: dict | None) -> "Keyset | None":
        if not raw or not raw.get("instant"):
            return None
        return cls(datetime.fromisoformat(raw["instant"]), raw.get("after_id"))


class NetSuiteClient(ApiClient):
    source = SOURCE

    def __init__(self, settings: NetSuiteSettings, **kw):
        # governance is on requests in flight: the connection pool holds at most that many
        transport = kw.pop("transport", None) or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency))
        super().__init__(settings.base_url, headers={"Accept": "application/json"}, transport=transport, **kw)
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.token = NetSuiteToken(settings, self.http, self.policy, self.sleep)
        self._currencies: dict[str, str] | None = None
        self.records_fetched = 0  # single-record calls, for reading what incremental runs cost

    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token.get()}"}

    def on_unauthorized(self) -> bool:
        self.token.get(force=True)
        return True

    def request(self, method: str, path: str, **kw):
        """The transport's request, plus NetSuite's 400 ``SSS_REQUEST_LIMIT_EXCEEDED`` retried:
        the request was refused before it ran, so sending it again is safe even for a write."""
        for attempt in range(self.policy.max_attempts):
            try:
                return super().request(method, path, **kw)
            except SourceError as exc:
                over_limit = exc.status == 400 and any(code in exc.detail for code in LIMIT_CODES)
                if not over_limit or attempt + 1 >= self.policy.max_attempts:
                    raise
                self.stats["throttled"] += 1
                self._wait(attempt, None)
        raise AssertionError("unreachable")

    # ---- SuiteQL
    def suiteql(self, query: str, limit: int | None = None, offset: int = 0) -> dict:
        """One page of a SuiteQL query (a read, so retried like a GET)."""
        return self.request("POST", SUITEQL, params={"limit": limit or PAGE_SIZE, "offset": offset}, json_body={"q": query},
                            headers={"Prefer": "transient"}, idempotent=True).body or {}

    def _literal(self, instant: datetime) -> str:
        text = instant.astimezone(self.zone).strftime(PY_INSTANT_FORMAT)
        return f"TO_DATE('{text}', '{INSTANT_FORMAT}')"

    def _to_utc(self, text: str | None) -> datetime | None:
        if not text:
            return None
        return datetime.strptime(text, PY_INSTANT_FORMAT).replace(tzinfo=self.zone).astimezone(timezone.utc)

    def _where(self, selection: Selection, lower: Keyset | None, upper: datetime | None) -> str:
        parts = [f"({selection.where})", "t.lastmodifieddate IS NOT NULL"]
        if lower is not None and lower.after_id is None:
            parts.append(f"t.lastmodifieddate >= {self._literal(lower.instant)}")
        elif lower is not None:
            # instants are whole seconds: rows in the keyset's second with a higher id, or any later row
            parts.append(f"(t.lastmodifieddate >= {self._literal(lower.instant + timedelta(seconds=1))}"
                         f" OR (t.lastmodifieddate >= {self._literal(lower.instant)} AND t.id > {int(lower.after_id)}))")
        if upper is not None:
            parts.append(f"t.lastmodifieddate < {self._literal(upper)}")
        return " AND ".join(parts)

    def _query(self, selection: Selection, lower: Keyset | None, upper: datetime | None) -> str:
        return (f"SELECT {selection.columns}, TO_CHAR(t.lastmodifieddate, '{INSTANT_FORMAT}') AS lastmodified "
                f"FROM {selection.table} t WHERE {self._where(selection, lower, upper)} "
                f"ORDER BY t.lastmodifieddate, t.id")

    def _narrowed(self, selection: Selection, lower: Keyset | None, upper: datetime | None) -> datetime | None:
        """A smaller upper bound for a query whose result would reach the row cap (None: cannot narrow)."""
        body = self.suiteql(f"SELECT TO_CHAR(MIN(t.lastmodifieddate), '{INSTANT_FORMAT}') AS low, "
                            f"TO_CHAR(MAX(t.lastmodifieddate), '{INSTANT_FORMAT}') AS high "
                            f"FROM {selection.table} t WHERE {self._where(selection, lower, upper)}", limit=1)
        row = (body.get("items") or [{}])[0]
        low, high = self._to_utc(row.get("low")), self._to_utc(row.get("high"))
        if low is None or high is None:
            return None
        top = upper or high + timedelta(seconds=1)
        middle = low + timedelta(seconds=max(1, int((top - low).total_seconds() // 2)))
        return middle if middle < top else None

    def select_pages(self, selection: Selection, since: datetime | None, resume: dict | None) -> Iterator[tuple[list[dict], dict | None, int | None]]:
        """Rows of a selection changed since ``since``, keyset-paged: (rows, resume, reported total)."""
        lower = Keyset.from_resume(resume) or (Keyset(since) if since else None)
        window: datetime | None = None  # the upper bound of the window being read, if one was needed
        while True:
            upper = window
            while True:
                body = self.suiteql(self._query(selection, lower, upper))
                total = body.get("totalResults")
                if total is None or total < QUERY_ROW_CAP:
                    break
                # the result would be cut at the cap: read an earlier window first
                narrower = self._narrowed(selection, lower, upper)
                if narrower is None:
                    break
                upper = narrower
            rows = body.get("items") or []
            for row in rows:
                row.pop("links", None)  # SuiteQL rows carry an empty links list, not data
                stamp = self._to_utc(row.get("lastmodified"))
                if stamp is not None:
                    row["lastmodified"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
            last = next((r for r in reversed(rows) if r.get("lastmodified") and str(r.get("id", "")).isdigit()), None)
            if body.get("hasMore") and last is None:
                # no row says where the next page starts: stopping here would drop the rest
                raise SourceError(SOURCE, "POST", f"{self.base_url}/{SUITEQL}", 200,
                                  "a page of more rows carries no lastmodified/id to continue from", retryable=True)
            if body.get("hasMore"):
                lower = Keyset(datetime.fromisoformat(last["lastmodified"].replace("Z", "+00:00")), int(last["id"]))
                window = upper
            elif upper is not None:
                lower = Keyset(upper)  # the window is read to its end: continue from its upper bound
                window = None
            else:
                yield rows, None, total
                return
            yield rows, lower.to_resume(), total

    # ---- record service
    def record(self, record_type: str, record_id: str, **params) -> dict | None:
        """One record by internal id (None when it no longer exists)."""
        self.records_fetched += 1
        try:
            return self.request("GET", f"{RECORDS}/{record_type}/{record_id}", params=params or None).body
        except SourceError as exc:
            if exc.status == 404:
                return None  # deleted between the selection and this read
            raise

    def currency_codes(self) -> dict[str, str]:
        """Currency internal id -> ISO code, from SuiteQL's currency table (read once)."""
        if self._currencies is None:
            try:
                rows = self.suiteql("SELECT c.id, c.symbol FROM currency c ORDER BY c.id").get("items") or []
                self._currencies = {str(r["id"]): str(r["symbol"]).upper() for r in rows if r.get("id") and r.get("symbol")}
            except SourceError as exc:
                if exc.status != 400:
                    raise
                self._currencies = {}  # the account does not expose the table: display names decide
        return self._currencies

    def with_currency(self, rows: list[dict]) -> list[dict]:
        """Each transaction row with ``currencysymbol``: its ISO code, when it can be known."""
        codes = self.currency_codes()
        for row in rows:
            code = codes.get(str(row.get("currency"))) or CURRENCY_BY_NAME.get(str(row.get("currencyname", "")).strip().lower())
            if code:
                row["currencysymbol"] = code
        return rows

    # ---- streams' readers
    def transactions(self, selection: Selection, since, resume) -> Iterator[Page]:
        """Transaction rows (header fields and currency code) a page at a time."""
        for rows, nxt, total in self.select_pages(selection, since, resume):
            yield Page(self.with_currency(rows), nxt, total)

    def invoices(self, since, resume) -> Iterator[Page]:
        """Invoice rows; the amount remaining read from the record for invoices not settled."""
        for rows, nxt, total in self.select_pages(INVOICES, since, resume):
            for row in self.with_currency(rows):
                code = str(row.get("status", "")).split(":")[-1]
                if code in SETTLED_INVOICE_CODES:
                    row["amountremaining"] = "0"
                elif str(row.get("id", "")).isdigit():
                    record = self.record("invoice", row["id"], fields="amountRemaining")
                    if record is not None and record.get("amountRemaining") is not None:
                        row["amountremaining"] = str(record["amountRemaining"])
            yield Page(rows, nxt, total)

    def payments(self, since, resume) -> Iterator[Page]:
        """Customer payment records (with the ``apply`` sublist) for the payments SuiteQL selects."""
        for rows, nxt, total in self.select_pages(PAYMENTS, since, resume):
            records = []
            for row in rows:
                if not str(row.get("id", "")).isdigit():
                    continue
                record = self.record("customerPayment", row["id"], expandSubResources="true")
                if record is not None:
                    records.append(record)
            yield Page(records, nxt, total)

    def rows(self, selections: list[Selection], since, resume) -> Iterator[Page]:
        """Rows of several selections in turn (customers, then vendors); resume names which."""
        start = (resume or {}).get("part", 0)
        for index in range(start, len(selections)):
            inner = (resume or {}).get("at") if index == start else None
            for rows, nxt, total in self.select_pages(selections[index], since, inner):
                more = nxt is not None or index + 1 < len(selections)
                yield Page(rows, {"part": index if nxt is not None else index + 1, "at": nxt} if more else None, total)

    # ---- writes (write-back)
    def upsert(self, record_type: str, external_id: str, record: dict) -> str | None:
        """Create or update the record with this external id; returns its internal id.

        The external id names the record, so a retried upsert lands on the same one: safe to retry.
        """
        if record_type not in UPSERT_TYPES:
            raise ValueError(f"netsuite: upsert supports {sorted(UPSERT_TYPES)}, not {record_type!r}")
        if not external_id or "/" in external_id:
            raise ValueError(f"netsuite: external id must be non-empty and without '/', got {external_id!r}")
        response = self.request("PUT", f"{RECORDS}/{record_type}/eid:{external_id}", json_body=record,
                                headers={"Content-Type": "application/json"}, idempotent=True)
        location = response.headers.get("location", "")
        return location.rstrip("/").rsplit("/", 1)[-1] or None


# ---- what each entity selects
_TRANSACTION = ("t.id, t.tranid, t.type, t.status, BUILTIN.DF(t.status) AS statusname, t.entity, t.foreigntotal, "
                "t.currency, BUILTIN.DF(t.currency) AS currencyname, t.memo, t.otherrefnum, t.externalid, "
                "TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate")
INVOICES = Selection("transaction", _TRANSACTION + ", TO_CHAR(t.duedate, 'YYYY-MM-DD') AS duedate, t.createdfrom", "t.type = 'CustInvc'")
CREDIT_NOTES = Selection("transaction", _TRANSACTION + ", t.createdfrom", "t.type = 'CustCred'")
PAYMENTS = Selection("transaction", "t.id", "t.type = 'CustPymt'")
DEPOSITS = Selection("transaction", _TRANSACTION, "t.type = 'Deposit'")
PURCHASE_ORDERS = Selection("transaction", _TRANSACTION + ", TO_CHAR(t.duedate, 'YYYY-MM-DD') AS duedate", "t.type = 'PurchOrd'")
JOURNALS = Selection("transaction", _TRANSACTION, "t.type = 'Journal'")
_ENTITY = "t.id, t.entityid, t.companyname, t.email, t.isinactive, t.externalid"
CUSTOMERS = Selection("customer", _ENTITY + ", 'customer' AS entitytype")
VENDORS = Selection("vendor", _ENTITY + ", 'vendor' AS entitytype")
ITEMS = Selection("item", "t.id, t.itemid, t.displayname, t.itemtype, t.isinactive, t.externalid", "t.itemtype = 'InvtPart'")


def _status(row: dict):
    """The status's display name without its record-type prefix ("Invoice : Open" -> "Open")."""
    # the letter code alone ("B") means different things per record type: without the display
    # name the status is unknown, and a record that needs one is quarantined
    name = row.get("statusname")
    return str(name).split(" : ", 1)[-1] if name else None


def _ref(record: dict, name: str):
    value = record.get(name)
    return value.get("refName") or value.get("id") if isinstance(value, dict) else value


def _applied_invoice(record: dict):
    """The invoice a payment is applied to: the first applied line of its ``apply`` sublist."""
    lines = (record.get("apply") or {}).get("items") or []
    for line in lines:
        if isinstance(line, dict) and line.get("apply", True) and isinstance(line.get("doc"), dict):
            return line["doc"].get("id")
    return None


def _direction(row: dict):
    try:
        return "out" if float(row.get("foreigntotal")) < 0 else "in"
    except (TypeError, ValueError):
        return "in"


def _absolute(value):
    try:
        return abs(float(value))
    except (TypeError, ValueError):
        return value


SHAPES = {
    "invoices": canonical_shape("invoices", {
        "invoice_id": "id", "updated_at": "lastmodified", "invoice_number": "tranid", "reference": "otherrefnum",
        "contact_id": "entity", "status": _status, "currency": "currencysymbol", "total": "foreigntotal",
        "amount_due": "amountremaining", "issued_on": "trandate"}),
    "credit_notes": canonical_shape("credit_notes", {
        "credit_note_id": "id", "updated_at": "lastmodified", "credit_note_number": "tranid", "invoice_id": "createdfrom",
        "status": _status, "currency": "currencysymbol", "total": "foreigntotal", "issued_on": "trandate"}),
    "payments": canonical_shape("payments", {
        "payment_id": "id", "updated_at": "lastModifiedDate", "invoice_id": _applied_invoice,
        "amount": lambda r: r.get("payment") if r.get("payment") is not None else r.get("total"),
        "reference": "memo", "paid_on": "tranDate", "status": lambda r: _ref(r, "status")}),
    "deposits": canonical_shape("deposits", {
        "deposit_id": "id", "updated_at": "lastmodified", "direction": _direction, "reference": "memo",
        "amount": lambda r: _absolute(r.get("foreigntotal")), "currency": "currencysymbol", "deposited_on": "trandate",
        "status": _status}),
    "purchase_orders": canonical_shape("purchase_orders", {
        "purchase_order_id": "id", "updated_at": "lastmodified", "po_number": "tranid", "supplier_id": "entity",
        "status": _status, "currency": "currencysymbol", "total": "foreigntotal", "ordered_on": "trandate",
        "expected_on": "duedate"}),
    "contacts": canonical_shape("contacts", {
        "contact_id": "id", "updated_at": "lastmodified", "name": lambda r: r.get("companyname") or r.get("entityid"),
        "is_supplier": lambda r: {"vendor": "true", "customer": "false"}.get(r.get("entitytype")), "email": "email"}),
    "items": canonical_shape("items", {"item_id": "id", "updated_at": "lastmodified", "sku": "itemid", "name": "displayname"}),
    "journals": canonical_shape("journals", {
        "journal_id": "id", "updated_at": "lastmodified", "narration": "memo", "journal_date": "trandate",
        "status": _status}),
}


def streams(client: NetSuiteClient) -> list[Stream]:
    """One stream per accounting entity, incremental by lastModifiedDate."""
    readers = {
        "invoices": client.invoices,
        "credit_notes": lambda since, resume: client.transactions(CREDIT_NOTES, since, resume),
        "payments": client.payments,
        "deposits": lambda since, resume: client.transactions(DEPOSITS, since, resume),
        "purchase_orders": lambda since, resume: client.transactions(PURCHASE_ORDERS, since, resume),
        "contacts": lambda since, resume: client.rows([CUSTOMERS, VENDORS], since, resume),
        "items": lambda since, resume: client.rows([ITEMS], since, resume),
        "journals": lambda since, resume: client.transactions(JOURNALS, since, resume),
    }
    descriptions = {
        "invoices": "SuiteQL transaction CustInvc (+ amountRemaining of open invoices)",
        "credit_notes": "SuiteQL transaction CustCred", "payments": "SuiteQL CustPymt ids + customerPayment records",
        "deposits": "SuiteQL transaction Deposit", "purchase_orders": "SuiteQL transaction PurchOrd",
        "contacts": "SuiteQL customer and vendor", "items": "SuiteQL item (InvtPart)", "journals": "SuiteQL transaction Journal",
    }
    return [Stream(SOURCE, entity, SHAPES[entity], read, description=f"NetSuite {descriptions[entity]}")
            for entity, read in readers.items()]
