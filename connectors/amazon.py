"""Amazon Selling Partner API: Login with Amazon tokens, Orders 2026-01-01 ``searchOrders`` and the
V2 settlement reports of the Reports API 2021-06-30.

- Auth: an LWA refresh-token exchange (form-encoded) gives a one-hour access token, sent as
  ``x-amz-access-token`` (SP-API no longer needs SigV4). It is refreshed before it expires, and
  a 403 ``Unauthorized`` (expired or revoked token) gets one refresh and one retry.
- Limits: a token bucket per operation with the models' default rate and burst, times
  :func:`~connectors.pacing.rate_limit_scale`, updated from ``x-amzn-RateLimit-Limit``; a 429
  ``QuotaExceeded`` empties that operation's bucket and is retried by the transport.
- Orders: a first run backfills by ``createdAfter`` (Amazon keeps two years), later runs read
  by ``lastUpdatedAfter``. Settlements: Amazon generates the reports itself; they are listed
  with ``getReports`` and each document is downloaded from its presigned URL and parsed by
  :mod:`connectors.amazon_settlement_report`.
"""
from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import httpx

from .amazon_settlement_report import (
    SETTLEMENT_LINE_SHAPE,
    SETTLEMENT_SHAPE,
    ParsedSettlement,
    decode_document,
    parse_settlement_report,
    settlement_line_records,
    settlement_records,
)
from .ingest import Page, Stream
from .pacing import Pacer, TokenBucketPacer, rate_limit_scale
from .records import Field, FieldError, RecordShape, as_int, dig
from .transport import ApiClient, ApiResponse, RetryPolicy, SourceError, default_timeout

SOURCE = "amazon"
ORDERS_PATH = "/orders/2026-01-01/orders"
REPORTS_PATH = "/reports/2021-06-30/reports"
DOCUMENTS_PATH = "/reports/2021-06-30/documents"
SETTLEMENT_REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"

DEFAULT_BACKFILL_DAYS = 730  # searchOrders returns at most two years of orders
PAGE_SIZE = 100  # searchOrders' largest page
REPORTS_PAGE_SIZE = 100  # getReports' largest page
TOKEN_MARGIN = 300  # refresh the one-hour access token this many seconds before it expires
# the datasets reconciliation reads: status and shipped quantities, money, cancellations, tracking
INCLUDED_DATA = ("FULFILLMENT", "PROCEEDS", "CANCELLATION", "PACKAGES")
DOCUMENT_URL_ATTEMPTS = 3  # a presigned URL lives 5 minutes; ask for a fresh one this often
PARSED_REPORTS_KEPT = 16  # settlement reports kept parsed between the two settlement streams

# operation -> (rate per second, burst): the default usage plans of the official models
USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getReports": (0.0222, 10),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
}


def _require(env, name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class AmazonSettings:
    spapi_base_url: str
    lwa_token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    marketplace_id: str
    backfill_days: int = DEFAULT_BACKFILL_DAYS

    @classmethod
    def from_env(cls, env=os.environ) -> "AmazonSettings":
        """Settings from ``AMAZON_*`` variables; a missing or bad one is named in the error."""
        raw_days = (env.get("AMAZON_BACKFILL_DAYS") or "").strip()
        if raw_days:
            try:
                days = int(raw_days)
            except ValueError:
                raise ValueError(f"AMAZON_BACKFILL_DAYS must be a whole number of days, got {raw_days!r}") from None
            if not 1 <= days <= DEFAULT_BACKFILL_DAYS:
                raise ValueError(f"AMAZON_BACKFILL_DAYS must be between 1 and {DEFAULT_BACKFILL_DAYS} "
                                 f"(Amazon returns at most two years of orders), got {days}")
        else:
            days = DEFAULT_BACKFILL_DAYS
        return cls(spapi_base_url=_require(env, "AMAZON_SPAPI_BASE_URL"), lwa_token_url=_require(env, "AMAZON_LWA_TOKEN_URL"),
                   client_id=_require(env, "AMAZON_LWA_CLIENT_ID"), client_secret=_require(env, "AMAZON_LWA_CLIENT_SECRET"),
                   refresh_token=_require(env, "AMAZON_REFRESH_TOKEN"), marketplace_id=_require(env, "AMAZON_MARKETPLACE_ID"),
                   backfill_days=days)

    def __repr__(self) -> str:  # never print the client secret or the refresh token
        return (f"AmazonSettings(spapi_base_url={self.spapi_base_url!r}, lwa_token_url={self.lwa_token_url!r}, "
                f"marketplace_id={self.marketplace_id!r}, backfill_days={self.backfill_days})")

    __str__ = __repr__


# ---------------------------------------------------------------------- pacing
class UsagePlanBucket(TokenBucketPacer):
    """One operation's token bucket; a 429 ``QuotaExceeded`` means the server's bucket is empty,
    so ours is emptied too and the retry waits for a token to come back."""

    def observe(self, headers, body=None) -> None:
        super().observe(headers, body)
        if "QuotaExceeded" in _error_codes(body):
            with self.lock:
                self.tokens = 0.0
                self.stamp = time.monotonic()


class OperationPacer(Pacer):
    """SP-API limits each operation separately: one bucket per operation, chosen per request."""

    def __init__(self, plans: dict[str, tuple[float, int]], scale: float, sleep: Callable[[float], None] = time.sleep):
        self.buckets = {op: UsagePlanBucket(rate, burst, scale, sleep) for op, (rate, burst) in plans.items()}
        self.local = threading.local()
        self.unpaced = Pacer()

    @contextmanager
    def operation(self, name: str):
        """Requests sent inside this block draw on ``name``'s bucket."""
        if name not in self.buckets:
            raise ValueError(f"amazon: no usage plan for operation {name!r}")
        previous = getattr(self.local, "name", None)
        self.local.name = name
        try:
            yield self.buckets[name]
        finally:
            self.local.name = previous

    def _current(self) -> Pacer:
        return self.buckets.get(getattr(self.local, "name", None) or "", self.unpaced)

    def acquire(self, cost: float = 1.0) -> None:
        self._current().acquire(cost)

    def observe(self, headers, body=None) -> None:
        self._current().observe(headers, body)


def _error_codes(body: Any) -> set[str]:
    if isinstance(body, dict):
        return {str(e.get("code")) for e in body.get("errors") or [] if isinstance(e, dict)}
    return set()


def _is_unauthorized(error: SourceError) -> bool:
    """A 403 whose ErrorList says ``Unauthorized`` (expired, revoked or malformed token)."""
    if error.status != 403:
        return False
    try:
        return "Unauthorized" in _error_codes(json.loads(error.detail))
    except (json.JSONDecodeError, TypeError):
        return '"Unauthorized"' in error.detail  # the excerpt was cut short


# ---------------------------------------------------------------------- LWA
class LwaClient(ApiClient):
    """The Login with Amazon token endpoint; retried like any source (it answers 5xx and 429 too)."""

    source = SOURCE


class LwaToken:
    """The LWA access token: exchanged from the refresh token, refreshed before its hour is up."""

    def __init__(self, settings: AmazonSettings, client: LwaClient):
        self.settings = settings
        self.client = client
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.exchanges = 0
        self.lock = threading.Lock()

    def get(self, force: bool = False) -> str:
        """A live access token (a new one when ``force`` or when the current one is about to expire)."""
        with self.lock:
            if force or self.access_token is None or time.monotonic() > self.expires_at - TOKEN_MARGIN:
                self._exchange()
            return self.access_token

    def _exchange(self) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": self.settings.refresh_token,
                "client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        # a repeated exchange only issues another access token, so it is safe to retry
        body = self.client.request("POST", self.settings.lwa_token_url, data=form, idempotent=True).body
        if not isinstance(body, dict) or not body.get("access_token"):
            raise SourceError(SOURCE, "POST", self.settings.lwa_token_url, 200, "LWA answer has no access_token")
        self.access_token = str(body["access_token"])
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self.expires_at = time.monotonic() + lifetime
        self.exchanges += 1


# ---------------------------------------------------------------------- report documents
class DocumentUrlExpired(Exception):
    """The presigned URL was refused (403): it lives 5 minutes, so ask for a fresh one."""


class ReportDocumentDownloader:
    """Plain GETs of presigned report-document URLs: no SP-API headers (the URL is its own
    credential), bounded retries for what can succeed on retry, and no query string (the
    signature) in any error."""

    def __init__(self, timeout: float, policy: RetryPolicy, sleep: Callable[[float], None],
                 transport: httpx.BaseTransport | None = None):
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), transport=transport,
                                 follow_redirects=True)
        self.policy = policy
        self.sleep = sleep

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, compression: str | None) -> str:
        """The document's text, decompressed; raises DocumentUrlExpired on a 403."""
        shown = str(httpx.URL(url).copy_with(query=None))
        last = ""
        for attempt in range(self.policy.max_attempts):
            try:
                response = self.http.get(url)
                if response.status_code == 403:
                    raise DocumentUrlExpired(shown)
                if response.status_code in (429, 500, 502, 503, 504):
                    last = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    raise SourceError(SOURCE, "GET", shown, response.status_code, response.text[:200])
                else:
                    return decode_document(response.content, compression)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = type(exc).__name__
            except (OSError, EOFError, zlib.error) as exc:  # a gzip body cut short
                last = f"document not readable: {type(exc).__name__}"
            self.sleep(self.policy.backoff(attempt))
        raise SourceError(SOURCE, "GET", shown, None, f"gave up after {self.policy.max_attempts} attempts: {last}",
                          retryable=True)


# ---------------------------------------------------------------------- the client
def _amazon_time(instant: datetime) -> str:
    """ISO 8601 in UTC with a Z, whole seconds (how SP-API writes times)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AmazonClient(ApiClient):
    """SP-API reads for one seller: per-operation pacing, LWA auth, orders and settlement reports.

    ``clock`` is "now" for the backfill window (the wall clock unless a caller says otherwise).
    """

    source = SOURCE

    def __init__(self, settings: AmazonSettings, *, clock: Callable[[], datetime] | None = None, **kw):
        sleep = kw.get("sleep", time.sleep)
        timeout = kw.get("timeout")
        timeout = timeout if timeout is not None else default_timeout()
        kw["timeout"] = timeout
        self.pacers = OperationPacer(USAGE_PLANS, rate_limit_scale(), sleep)
        super().__init__(settings.spapi_base_url, headers={"Accept": "application/json"}, pacer=self.pacers, **kw)
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.lwa = LwaClient(settings.lwa_token_url, timeout=timeout, sleep=sleep, policy=kw.get("policy"),
                             transport=kw.get("transport"))
        self.token = LwaToken(settings, self.lwa)
        self.documents = ReportDocumentDownloader(timeout, self.policy, sleep, kw.get("transport"))
        self.parsed: OrderedDict[str, ParsedSettlement] = OrderedDict()
        self.parsed_lock = threading.Lock()

    def close(self) -> None:
        super().close()
        self.lwa.close()
        self.documents.close()

    def auth_headers(self) -> dict:
        return {"x-amz-access-token": self.token.get()}

    def on_unauthorized(self) -> bool:
        self.token.get(force=True)
        return True

    def request(self, method: str, path: str, **kw) -> ApiResponse:
        """The transport's request, plus SP-API's way of saying a token expired: 403 Unauthorized
        gets one refresh and one retry."""
        try:
            return super().request(method, path, **kw)
        except SourceError as exc:
            if not _is_unauthorized(exc):
                raise
        self.token.get(force=True)
        return super().request(method, path, **kw)

    def call(self, operation: str, path: str, params: dict | None = None) -> dict:
        """GET one SP-API operation under its own usage plan; the parsed JSON object."""
        with self.pacers.operation(operation):
            response = self.request("GET", path, params=params)
        if not isinstance(response.body, dict):
            raise SourceError(SOURCE, "GET", path, response.status, f"{operation} answer is not a JSON object")
        return response.body

    # ---- orders
    def order_pages(self, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Orders created in the backfill window (first run) or updated since ``since``.

        A ``paginationToken`` expires after 24 hours and belongs to the walk that issued it, so
        a run resumed after a crash restarts its window from ``since`` (the pages already landed
        are upserted again, harmlessly); ``resume`` only says that a restart happened.
        """
        if since is None:
            params: dict[str, Any] = {"createdAfter": _amazon_time(self.clock() - timedelta(days=self.settings.backfill_days))}
        else:
            params = {"lastUpdatedAfter": _amazon_time(since)}
        # no createdBefore / lastUpdatedBefore: they must trail the request by two minutes, and
        # Amazon applies (and reports) that bound itself
        params.update({"marketplaceIds": self.settings.marketplace_id, "maxResultsPerPage": PAGE_SIZE,
                       "includedData": ",".join(INCLUDED_DATA)})
        token: str | None = None
        pages = 0
        while True:
            body = self.call("searchOrders", ORDERS_PATH, {**params, "paginationToken": token} if token else params)
            orders = body.get("orders")
            if not isinstance(orders, list):
                raise SourceError(SOURCE, "GET", ORDERS_PATH, 200, "searchOrders answer has no orders list")
            token = (body.get("pagination") or {}).get("nextToken") or None
            pages += 1
            yield Page(orders, {"restart_window": True, "pages_read": pages} if token else None)
            if token is None:
                return

    def get_order(self, order_id: str) -> dict:
        """One order (getOrder) with the datasets reconciliation reads."""
        body = self.call("getOrder", f"{ORDERS_PATH}/{order_id}", {"includedData": ",".join(INCLUDED_DATA)})
        return body.get("order") or {}

    # ---- settlement reports
    def settlement_reports(self, since: datetime | None) -> Iterator[dict]:
        """DONE settlement reports created since ``since`` (Amazon's default, 90 days, when None).

        Not filtered by marketplace: a settlement covers the seller's account in a region, and
        Amazon generates these reports itself.
        """
        params: dict[str, Any] = {"reportTypes": SETTLEMENT_REPORT_TYPE, "processingStatuses": "DONE",
                                  "pageSize": REPORTS_PAGE_SIZE}
        if since is not None:
            params["createdSince"] = _amazon_time(since)
        while True:
            body = self.call("getReports", REPORTS_PATH, params)
            for report in body.get("reports") or []:
                if isinstance(report, dict) and report.get("reportId") and report.get("processingStatus", "DONE") == "DONE" \
                        and report.get("reportType", SETTLEMENT_REPORT_TYPE) == SETTLEMENT_REPORT_TYPE:
                    yield report
            token = body.get("nextToken")
            if not token:
                return
            params = {"nextToken": token}  # the documented rule: nextToken alone on later pages

    def settlement(self, report: dict) -> ParsedSettlement:
        """One settlement report, downloaded and parsed (kept: a closed settlement never changes)."""
        report_id = str(report["reportId"])
        with self.parsed_lock:
            hit = self.parsed.get(report_id)
        if hit is not None:
            return hit
        parsed = parse_settlement_report(self.report_text(report), report)
        with self.parsed_lock:
            self.parsed[report_id] = parsed
            while len(self.parsed) > PARSED_REPORTS_KEPT:
                self.parsed.popitem(last=False)
        return parsed

    def report_text(self, report: dict) -> str:
        """The report document's text: getReport when the listing lacks the document id, then
        getReportDocument and a plain download of its presigned URL."""
        report_id = str(report["reportId"])
        document_id = report.get("reportDocumentId")
        if not document_id:
            report = self.call("getReport", f"{REPORTS_PATH}/{report_id}")
            document_id = report.get("reportDocumentId")
            if not document_id:
                raise SourceError(SOURCE, "GET", f"{REPORTS_PATH}/{report_id}", 200,
                                  f"report {report_id} is {report.get('processingStatus')} and has no document")
        for _ in range(DOCUMENT_URL_ATTEMPTS):
            document = self.call("getReportDocument", f"{DOCUMENTS_PATH}/{document_id}")
            if not document.get("url"):
                raise SourceError(SOURCE, "GET", f"{DOCUMENTS_PATH}/{document_id}", 200, "report document has no url")
            try:
                return self.documents.get(document["url"], document.get("compressionAlgorithm"))
            except DocumentUrlExpired:
                continue  # the URL outlived its 5 minutes: ask for a fresh one
        raise SourceError(SOURCE, "GET", f"{DOCUMENTS_PATH}/{document_id}", 403,
                          f"document URL refused {DOCUMENT_URL_ATTEMPTS} times")

    def settlement_pages(self, entity: str, since: datetime | None, resume: dict | None) -> Iterator[Page]:
        """One page per settlement report: its settlement record, or its lines.

        ``getReports``' nextToken is not kept across a crash (expiry undocumented); the resume
        point lists the reports already landed, and a resumed run lists the window again and
        skips them.
        """
        records_of = settlement_records if entity == "settlements" else settlement_line_records
        done = list((resume or {}).get("done", []))
        skip = set(done)
        for report in self.settlement_reports(since):
            report_id = str(report["reportId"])
            if report_id in skip:
                continue
            records = records_of(self.settlement(report))
            done.append(report_id)
            skip.add(report_id)
            yield Page(records, {"done": done})
        yield Page([], None)


# ---------------------------------------------------------------------- raw shapes
def _required(path: str, kind_reader: Callable[[Any], Any] | None = None):
    """Read ``path``; a record without it is quarantined with the API field's name as reason."""
    def read(record: dict):
        value = dig(record, path)
        if value is None or value == "":
            raise FieldError(f"{path}: missing")
        return kind_reader(value) if kind_reader else value
    return read


def _item_quantity(record: dict) -> int:
    """Units ordered over the order's items; ``orderItems`` is required by the model."""
    items = record.get("orderItems")
    if not isinstance(items, list):
        raise FieldError("orderItems: missing")
    total = 0
    for index, item in enumerate(items):
        name = f"orderItems[{index}].quantityOrdered"
        quantity = as_int(item.get("quantityOrdered") if isinstance(item, dict) else None, name)
        if quantity is None:
            raise FieldError(f"{name}: missing")
        total += quantity
    return total


def _items_fulfilled(record: dict) -> int | None:
    items = record.get("orderItems")
    if not isinstance(items, list):
        return None
    values = [as_int(dig(item, "fulfillment.quantityFulfilled"), f"orderItems[{index}].fulfillment.quantityFulfilled")
              for index, item in enumerate(items) if isinstance(item, dict)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _package_count(record: dict) -> int | None:
    packages = record.get("packages")
    return len(packages) if isinstance(packages, list) else None


ORDER_SHAPE = RecordShape(
    key=Field("order_id", "orderId", required=True),
    updated_at=Field("updated_at", _required("lastUpdatedTime"), "instant", required=True),
    fields=(
        Field("created_at", _required("createdTime"), "instant", required=True),
        Field("sales_channel", _required("salesChannel.channelName"), required=True),
        Field("items_ordered", _item_quantity, "int", required=True, non_negative=True),
        # FULFILLMENT is asked for on every call, and the status is what reconciliation turns on
        Field("fulfillment_status", _required("fulfillment.fulfillmentStatus"), required=True),
        Field("fulfilled_by", "fulfillment.fulfilledBy"),
        Field("marketplace_id", "salesChannel.marketplaceId"),
        Field("order_total", "proceeds.grandTotal.amount", "money"),
        Field("currency", "proceeds.grandTotal.currencyCode", currency=True),
        Field("items_fulfilled", _items_fulfilled, "int", non_negative=True),
        Field("latest_ship_at", "fulfillment.shipByWindow.latestDateTime", "instant"),
        Field("package_count", _package_count, "int", non_negative=True),
    ),
)

SHAPES: dict[str, RecordShape] = {
    "orders": ORDER_SHAPE,
    "settlements": SETTLEMENT_SHAPE,
    "settlement_lines": SETTLEMENT_LINE_SHAPE,
}


def streams(client: AmazonClient) -> list[Stream]:
    """Orders (by lastUpdatedTime), settlements and settlement lines (by report createdTime)."""
    def settlements(since, resume):
        return client.settlement_pages("settlements", since, resume)

    def settlement_lines(since, resume):
        return client.settlement_pages("settlement_lines", since, resume)

    return [
        Stream(SOURCE, "orders", ORDER_SHAPE, client.order_pages,
               description="SP-API Orders 2026-01-01 searchOrders"),
        Stream(SOURCE, "settlements", SETTLEMENT_SHAPE, settlements,
               description="V2 settlement reports: one row per settlement (summary row)"),
        Stream(SOURCE, "settlement_lines", SETTLEMENT_LINE_SHAPE, settlement_lines,
               description="V2 settlement reports: one row per amount line"),
    ]
