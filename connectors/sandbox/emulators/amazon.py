"""Amazon Selling Partner API emulator: LWA tokens, Orders 2026-01-01, Reports 2021-06-30.

Mounted at ``/amazon``, standing for ``https://sellingpartnerapi-na.amazon.com`` and, for the
token endpoint ``/auth/o2/token``, ``https://api.amazon.com``.

- LWA: ``POST /auth/o2/token`` exchanges the sandbox refresh token for an ``Atza|`` access token
  that lives 3600 real seconds. Every API call needs it in ``x-amz-access-token`` (SigV4
  headers are ignored, as SP-API has done since 2023-10-02).
- Orders: ``searchOrders`` and ``getOrder`` per ``orders_2026-01-01.json``, rendered as of the
  sandbox clock minus the documented two-minute visibility delay (see ``amazon_orders``).
- Reports: ``getReports``, ``getReport``, ``getReportDocument`` over the world's settlements
  (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``, DONE from ``report_created_at``);
  ``createReport`` refuses settlement types, which Amazon generates itself. The document URL is
  presigned-style, served under ``/amazon/_sandbox/documents/`` (no API faults there) and
  expires 5 real minutes after it was issued.
- Limits: one token bucket per operation with the models' default rate and burst; overflow is
  429 ``QuotaExceeded``; ``x-amzn-RateLimit-Limit`` and ``x-amzn-RequestId`` as documented.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..world import AMAZON_MARKETPLACE_ID, parse_instant
from .amazon_orders import (
    FULFILLED_BY,
    FULFILLMENT_STATUSES,
    INCLUDED_DATA,
    VISIBILITY_DELAY,
    AmazonOrderBook,
    amazon_instant,
    view_instant,
)
from .amazon_settlement_file import SETTLEMENT_REPORT_TYPE, render_settlement_flat_file
from .throttle import TokenBucket

# operation -> (rate per second, burst): the default usage plans in the official models
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getReports": (0.0222, 10),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
    "createReport": (0.0167, 15),
}

ACCESS_TOKEN_SECONDS = 3600
DOCUMENT_URL_SECONDS = 300
REPORT_LOOKBACK = timedelta(days=90)  # getReports' default createdSince
# settlement report types -> the internal number Amazon names when createReport refuses them
# (1117 and 1118 as seen in real refusals; the XML type's number is not known, so its name is used)
SETTLEMENT_REPORT_TYPES = {
    SETTLEMENT_REPORT_TYPE: "1118",
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE": "1117",
    "GET_V2_SETTLEMENT_REPORT_DATA_XML": "GET_V2_SETTLEMENT_REPORT_DATA_XML",
}
PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")

DENIED_MESSAGE = "Access to requested resource is denied."
TOKEN_MISSING = "Access token is missing in the request header."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
TOKEN_EXPIRED = "The access token you provided has expired."


# ---------------------------------------------------------------------- response shapes
def _request_id() -> str:
    return str(uuid.uuid4())


def sp_error(status: int, code: str, message: str, details: str | None = None, limit: float | None = None) -> Response:
    """An SP-API ErrorList response with the documented headers."""
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return sp_json({"errors": [error]}, status, limit)


def sp_json(body: dict, status: int = 200, limit: float | None = None) -> Response:
    """A JSON response with ``x-amzn-RequestId`` and, for limited operations, ``x-amzn-RateLimit-Limit``."""
    headers = {"x-amzn-RequestId": _request_id()}
    if limit is not None:
        headers["x-amzn-RateLimit-Limit"] = _rate_text(limit)
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _rate_text(rate: float) -> str:
    return f"{rate:g}"


def throttled(retry_after: float) -> Response:
    """SP-API's throttle answer: 429 QuotaExceeded (SP-API sends no Retry-After)."""
    return sp_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "")


def server_error(status: int) -> Response:
    """A 5xx in SP-API's ErrorList shape."""
    return sp_error(status, "InternalFailure", "We encountered an internal error. Please try again.")


class InvalidInput(Exception):
    """A parameter problem answered with 400 InvalidInput."""


# ---------------------------------------------------------------------- LWA
class LwaTokens:
    """Access tokens issued by the LWA endpoint, each with a real-time expiry."""

    def __init__(self):
        self.expires_at: dict[str, float] = {}
        self.lock = threading.Lock()

    def issue(self) -> str:
        """A new ``Atza|`` access token, good for an hour of real time."""
        token = "Atza|" + secrets.token_urlsafe(96)
        now = time.time()
        with self.lock:
            # forget tokens that expired long ago so the table stays small
            for stale in [t for t, at in self.expires_at.items() if at < now - 86400]:
                del self.expires_at[stale]
            self.expires_at[token] = now + ACCESS_TOKEN_SECONDS
        return token

    def check(self, token: str | None) -> str | None:
        """None when the token is good, else the ``details`` text SP-API sends with its 403."""
        if not token:
            return TOKEN_MISSING
        with self.lock:
            expiry = self.expires_at.get(token)
        if expiry is None:
            return TOKEN_INVALID
        if expiry <= time.time():
            return TOKEN_EXPIRED
        return None


def _lwa_error(status: int, error: str, description: str) -> Response:
    body = {"error_description": description, "error": error}
    headers = {"x-amzn-RequestId": _request_id(), "Cache-Control": "no-store"}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _form_fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}


# ---------------------------------------------------------------------- presigned documents
class DocumentUrlSigner:
    """Presigned-style URLs for report documents: HMAC over the id and the issue time."""

    def __init__(self, base_url: str, secret: str):
        self.base_url = base_url
        self.key = hashlib.sha256(f"closeloop-sandbox-documents:{secret}".encode()).digest()

    def signature(self, document_id: str, stamp: str, expires: int) -> str:
        """The hex HMAC that binds a document id to its issue stamp and lifetime."""
        message = f"{document_id}\n{stamp}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def url(self, document_id: str, issued_at: float | None = None) -> str:
        """The URL for ``document_id`` issued at ``issued_at`` (epoch seconds; default now)."""
        issued = datetime.fromtimestamp(time.time() if issued_at is None else issued_at, tz=timezone.utc)
        stamp = issued.strftime("%Y%m%dT%H%M%SZ")
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(DOCUMENT_URL_SECONDS),
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self.signature(document_id, stamp, DOCUMENT_URL_SECONDS),
        }
        return f"{self.base_url}/_sandbox/documents/{document_id}?{urlencode(query)}"

    def refusal(self, document_id: str, query) -> Response | None:
        """None when the URL is valid now, else S3's 403 XML (expired or tampered)."""
        stamp = query.get("X-Amz-Date", "")
        try:
            expires = int(query.get("X-Amz-Expires", ""))
            issued = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return _s3_error(403, "AccessDenied", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
        if not hmac.compare_digest(self.signature(document_id, stamp, expires), query.get("X-Amz-Signature", "")):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        now = datetime.now(timezone.utc)
        expiry = issued + timedelta(seconds=expires)
        if now >= expiry:
            return _s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                {
                    "X-Amz-Expires": str(expires),
                    "Expires": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        return None


def _s3_error(status: int, code: str, message: str, extra: dict | None = None) -> Response:
    request_id = secrets.token_hex(8).upper()
    parts = [f"<Code>{code}</Code>", f"<Message>{message}</Message>"]
    parts += [f"<{k}>{v}</{k}>" for k, v in (extra or {}).items()]
    parts += [f"<RequestId>{request_id}</RequestId>", f"<HostId>{base64.b64encode(secrets.token_bytes(48)).decode()}</HostId>"]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    return Response(body, status_code=status, media_type="application/xml", headers={"x-amz-request-id": request_id})


# ---------------------------------------------------------------------- settlements as reports
def report_instant(instant: datetime) -> str:
    """A time as the Reports API writes it: ``2026-08-02T06:00:00+00:00``."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class SettlementReports:
    """The world's settlements as Reports API reports, visible from ``report_created_at``."""

    def __init__(self, world):
        self.world = world
        self.lock = threading.Lock()
        self.rows: list[dict] | None = None
        self.documents: OrderedDict[int, str] = OrderedDict()

    def _load(self) -> list[dict]:
        with self.lock:
            if self.rows is None:
                frame = self.world.table("settlements").sort(["report_created_at", "report_id"], descending=True)
                self.rows = list(frame.iter_rows(named=True))
            return self.rows

    def visible(self, now: datetime) -> list[dict]:
        """Settlement rows whose report exists at ``now``, newest first."""
        return [r for r in self._load() if r["report_created_at"] is not None and r["report_created_at"] <= now]

    def by_report_id(self, report_id: str, now: datetime) -> dict | None:
        """The settlement whose report is ``report_id``, if that report exists at ``now``."""
        return next((r for r in self.visible(now) if r["report_id"] == report_id), None)

    def by_document_id(self, document_id: str, now: datetime) -> dict | None:
        """The settlement whose report document is ``document_id``, if it exists at ``now``."""
        return next((r for r in self.visible(now) if r["report_document_id"] == document_id), None)

    def document(self, settlement: dict) -> str:
        """The flat file of one settlement (a closed settlement never changes, so it is kept)."""
        settlement_id = settlement["settlement_id"]
        with self.lock:
            text = self.documents.get(settlement_id)
        if text is None:
            lines = self.world.table("settlement_lines").filter(pl.col("settlement_id") == settlement_id).to_dicts()
            text = render_settlement_flat_file(settlement, lines)
            with self.lock:
                self.documents[settlement_id] = text
                while len(self.documents) > 16:
                    self.documents.popitem(last=False)
        return text

    @staticmethod
    def report(row: dict) -> dict:
        """The model's Report object for one settlement (Reports API times end in +00:00)."""
        created = report_instant(row["report_created_at"])
        return {
            "reportType": SETTLEMENT_REPORT_TYPE,
            "processingEndTime": created,
            "processingStatus": "DONE",
            "marketplaceIds": [AMAZON_MARKETPLACE_ID],
            "reportDocumentId": row["report_document_id"],
            "reportId": row["report_id"],
            "dataEndTime": report_instant(row["end_at"]),
            "createdTime": created,
            "processingStartTime": created,
            "dataStartTime": report_instant(row["start_at"]),
        }


# ---------------------------------------------------------------------- parameters
def _list_param(query, name: str) -> list[str] | None:
    """An array query parameter: comma-separated (Swagger's csv default) or repeated."""
    values = query.getlist(name)
    if not values:
        return None
    items = [part.strip() for value in values for part in value.split(",")]
    return [i for i in items if i]


def _instant_param(query, name: str) -> datetime | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        return parse_instant(text.strip())
    except ValueError:
        raise InvalidInput(f"Invalid {name}: '{text}' is not a valid ISO 8601 date-time.") from None


def _int_param(query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"Invalid {name}: '{text}' is not an integer.") from None
    if not low <= value <= high:
        raise InvalidInput(f"Invalid {name}: {value}. The value must be between {low} and {high}.")
    return value


def _enum_list(query, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    values = _list_param(query, name)
    if values is None:
        return None
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidInput(f"Invalid {name}: {', '.join(bad)}. Valid values: {', '.join(allowed)}.")
    return values


def _encode_token(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str, name: str) -> dict:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError
        return payload
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"Invalid {name}.") from None


# searchOrders parameters that must keep their values across pages (the model lets only
# maxResultsPerPage and includedData change)
_SEARCH_FILTERS = (
    "createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore",
    "fulfillmentStatuses", "marketplaceIds", "fulfilledBy",
)


def _search_fingerprint(query) -> str:
    parts = [(name, sorted(_list_param(query, name) or [])) for name in _SEARCH_FILTERS]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


# ---------------------------------------------------------------------- the app
def build(ctx) -> Starlette:
    """The SP-API + LWA app over ``ctx.world``; routes are relative to ``/amazon``."""
    creds = ctx.credentials
    tokens = LwaTokens()
    signer = DocumentUrlSigner(ctx.source_url("amazon"), creds.amazon_lwa_client_secret)
    order_book = AmazonOrderBook(ctx.world)
    reports = SettlementReports(ctx.world)
    buckets = {op: TokenBucket(rate, burst, ctx.throttle) for op, (rate, burst) in RATE_LIMITS.items()}

    def guard(request: Request, operation: str) -> Response | None:
        """Authorisation, then the operation's token bucket."""
        problem = tokens.check(request.headers.get("x-amz-access-token"))
        if problem is not None:
            return sp_error(403, "Unauthorized", DENIED_MESSAGE, problem)
        admitted, _wait = buckets[operation].try_take()
        if not admitted:
            return sp_error(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "", RATE_LIMITS[operation][0]
            )
        return None

    def invalid(message: str, operation: str) -> Response:
        """400 InvalidInput with the operation's rate limit header."""
        return sp_error(400, "InvalidInput", message, "", RATE_LIMITS[operation][0])

    # ------------------------------------------------------------------ LWA
    async def lwa_token(request: Request) -> Response:
        fields = await _form_fields(request)
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic ") and not client_id:
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, binascii.Error):
                client_id = client_secret = None
        grant_type = fields.get("grant_type")
        if not grant_type:
            return _lwa_error(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type != "refresh_token":
            return _lwa_error(400, "unsupported_grant_type", f"The authorization grant type is not supported by the authorization server : {grant_type}")
        if client_id != creds.amazon_lwa_client_id or client_secret != creds.amazon_lwa_client_secret:
            return _lwa_error(401, "invalid_client", "Client authentication failed")
        refresh_token = fields.get("refresh_token")
        if not refresh_token:
            return _lwa_error(400, "invalid_request", "The request is missing a required parameter : refresh_token")
        if refresh_token != creds.amazon_refresh_token:
            return _lwa_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        body = {
            "access_token": tokens.issue(),
            "refresh_token": creds.amazon_refresh_token,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
        }
        headers = {"x-amzn-RequestId": _request_id(), "Cache-Control": "no-store"}
        return Response(json.dumps(body), media_type="application/json", headers=headers)

    # ------------------------------------------------------------------ orders
    def included_data(query) -> set[str]:
        """The datasets named in ``includedData`` (validated against the model's enum)."""
        return set(_enum_list(query, "includedData", INCLUDED_DATA) or [])

    async def search_orders(request: Request) -> Response:
        op = "searchOrders"
        refused = guard(request, op)
        if refused is not None:
            return refused
        query = request.query_params
        now = ctx.now()
        try:
            page_size = _int_param(query, "maxResultsPerPage", 100, 1, 100)
            included = included_data(query)
            statuses = _enum_list(query, "fulfillmentStatuses", FULFILLMENT_STATUSES)
            fulfilled_by = _enum_list(query, "fulfilledBy", FULFILLED_BY)
            marketplaces = _list_param(query, "marketplaceIds")
            if marketplaces is not None and len(marketplaces) > 50:
                raise InvalidInput("Invalid marketplaceIds: at most 50 values are allowed.")
            created_after = _instant_param(query, "createdAfter")
            created_before = _instant_param(query, "createdBefore")
            updated_after = _instant_param(query, "lastUpdatedAfter")
            updated_before = _instant_param(query, "lastUpdatedBefore")
            if (created_after is None) == (updated_after is None):
                raise InvalidInput("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
            if created_after is not None and updated_before is not None:
                raise InvalidInput("lastUpdatedBefore cannot be provided together with createdAfter.")
            if updated_after is not None and created_before is not None:
                raise InvalidInput("createdBefore cannot be provided together with lastUpdatedAfter.")
            by_created = created_after is not None
            after_name, before_name = ("createdAfter", "createdBefore") if by_created else ("lastUpdatedAfter", "lastUpdatedBefore")
            after = created_after if by_created else updated_after
            before = created_before if by_created else updated_before
            if after > now:
                raise InvalidInput(f"{after_name} cannot be later than the time of the request.")
            if before is not None:
                if before < after:
                    raise InvalidInput(f"{before_name} must be equal to or after {after_name}.")
                if before > now - VISIBILITY_DELAY:
                    raise InvalidInput(f"{before_name} must be at least two minutes before the time of the request.")
            view = view_instant(now)
            bound = before if before is not None else view
            cursor = None
            token_text = query.get("paginationToken")
            if token_text:
                token = _decode_token(token_text, "paginationToken")
                if token.get("f") != _search_fingerprint(query):
                    raise InvalidInput(
                        "Invalid paginationToken: the other parameters must have the values of the request that returned it."
                    )
                try:
                    # the walk keeps the snapshot of its first page; never later than the clock allows
                    view = min(parse_instant(token["view"]), view)
                    bound = parse_instant(token["bound"])
                    cursor = (parse_instant(token["k"][0]), str(token["k"][1]))
                except (KeyError, IndexError, TypeError, ValueError):
                    raise InvalidInput("Invalid paginationToken.") from None
        except InvalidInput as exc:
            return invalid(str(exc), op)

        key = "created" if by_created else "last_updated"
        frame = order_book.states(view)
        if marketplaces is not None and AMAZON_MARKETPLACE_ID not in marketplaces:
            frame = frame.head(0)
        at = lambda value: pl.lit(value, dtype=pl.Datetime("us", "UTC"))  # noqa: E731
        frame = frame.filter((pl.col(key) >= at(after)) & (pl.col(key) <= at(bound)))
        if statuses is not None:
            frame = frame.filter(pl.col("status").is_in(statuses))
        if fulfilled_by is not None:
            frame = frame.filter(pl.col("fulfilled_by").is_in(fulfilled_by))
        if cursor is not None:
            frame = frame.filter(
                (pl.col(key) > at(cursor[0])) | ((pl.col(key) == at(cursor[0])) & (pl.col("order_id") > cursor[1]))
            )
        page = frame.sort([key, "order_id"]).head(page_size + 1)
        rows = list(page.iter_rows(named=True))
        more = len(rows) > page_size
        rows = rows[:page_size]
        orders = order_book.render_page(rows, included, view)
        orders = ctx.faults["amazon"].mutate(orders, ("orderId",))
        body: dict = {"orders": orders}
        if more:
            last = rows[-1]
            body["pagination"] = {
                "nextToken": _encode_token({
                    "f": _search_fingerprint(query),
                    "view": view.isoformat(),
                    "bound": bound.isoformat(),
                    "k": [last[key].isoformat(), last["order_id"]],
                })
            }
        body["createdBefore" if by_created else "lastUpdatedBefore"] = amazon_instant(bound)
        return sp_json(body, limit=RATE_LIMITS[op][0])

    async def get_order(request: Request) -> Response:
        op = "getOrder"
        refused = guard(request, op)
        if refused is not None:
            return refused
        try:
            included = included_data(request.query_params)
        except InvalidInput as exc:
            return invalid(str(exc), op)
        order_id = request.path_params["orderId"]
        view = view_instant(ctx.now())
        state = order_book.state(order_id, view)
        if state is None:
            return sp_error(404, "NotFound", f"Order {order_id} not found.", "", RATE_LIMITS[op][0])
        return sp_json({"order": order_book.render_page([state], included, view)[0]}, limit=RATE_LIMITS[op][0])

    # ------------------------------------------------------------------ reports
    async def get_reports(request: Request) -> Response:
        op = "getReports"
        refused = guard(request, op)
        if refused is not None:
            return refused
        query = request.query_params
        now = ctx.now()
        try:
            if "nextToken" in query:
                if any(name != "nextToken" for name in query.keys()):
                    raise InvalidInput("nextToken must be the only parameter when it is provided.")
                state = _decode_token(query["nextToken"], "nextToken")
                try:
                    types = list(state["types"])
                    statuses = state["statuses"]
                    marketplaces = state["marketplaces"]
                    page_size = int(state["size"])
                    since = parse_instant(state["since"])
                    until = parse_instant(state["until"])
                    cursor = (parse_instant(state["k"][0]), str(state["k"][1]))
                except (KeyError, IndexError, TypeError, ValueError):
                    raise InvalidInput("Invalid nextToken.") from None
            else:
                types = _list_param(query, "reportTypes")
                if not types:
                    raise InvalidInput("Either reportTypes or nextToken is required.")
                if len(types) > 10:
                    raise InvalidInput("Invalid reportTypes: at most 10 values are allowed.")
                statuses = _enum_list(query, "processingStatuses", PROCESSING_STATUSES)
                marketplaces = _list_param(query, "marketplaceIds")
                if marketplaces is not None and not 1 <= len(marketplaces) <= 10:
                    raise InvalidInput("Invalid marketplaceIds: between 1 and 10 values are allowed.")
                page_size = _int_param(query, "pageSize", 10, 1, 100)
                since = _instant_param(query, "createdSince") or now - REPORT_LOOKBACK
                until = _instant_param(query, "createdUntil") or now
                if until < since:
                    raise InvalidInput("createdUntil must be after createdSince.")
                cursor = None
        except InvalidInput as exc:
            return invalid(str(exc), op)

        rows = []
        if SETTLEMENT_REPORT_TYPE in types and (statuses is None or "DONE" in statuses) and (
            marketplaces is None or AMAZON_MARKETPLACE_ID in marketplaces
        ):
            for row in reports.visible(now):
                created = row["report_created_at"]
                if not since <= created <= until:
                    continue
                if cursor is not None and (created, row["report_id"]) >= cursor:
                    continue
                rows.append(row)
        page, more = rows[:page_size], len(rows) > page_size
        body: dict = {"reports": [reports.report(r) for r in page]}
        if more:
            last = page[-1]
            body["nextToken"] = _encode_token({
                "types": types,
                "statuses": statuses,
                "marketplaces": marketplaces,
                "size": page_size,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "k": [last["report_created_at"].isoformat(), last["report_id"]],
            })
        return sp_json(body, limit=RATE_LIMITS[op][0])

    async def get_report(request: Request) -> Response:
        op = "getReport"
        refused = guard(request, op)
        if refused is not None:
            return refused
        report_id = request.path_params["reportId"]
        row = reports.by_report_id(report_id, ctx.now())
        if row is None:
            return sp_error(404, "NotFound", f"Report {report_id} not found.", "", RATE_LIMITS[op][0])
        return sp_json(reports.report(row), limit=RATE_LIMITS[op][0])

    async def create_report(request: Request) -> Response:
        op = "createReport"
        refused = guard(request, op)
        if refused is not None:
            return refused
        try:
            spec = json.loads(await request.body() or b"null")
        except ValueError:
            return invalid("The request body is not valid JSON.", op)
        if not isinstance(spec, dict):
            return invalid("The request body must be a CreateReportSpecification object.", op)
        report_type = spec.get("reportType")
        marketplaces = spec.get("marketplaceIds")
        if not isinstance(report_type, str) or not report_type:
            return invalid("reportType is required.", op)
        if not isinstance(marketplaces, list) or not 1 <= len(marketplaces) <= 25:
            return invalid("marketplaceIds is required and must hold between 1 and 25 values.", op)
        if report_type in SETTLEMENT_REPORT_TYPES:
            # "Settlement reports cannot be requested or scheduled. They are automatically
            # scheduled by Amazon." (report type values, settlement); this is Amazon's refusal text
            return invalid(f"Request for report type {SETTLEMENT_REPORT_TYPES[report_type]} is not allowed at this time", op)
        return invalid(f"Report type {report_type} is not available in the closeloop sandbox.", op)

    async def get_report_document(request: Request) -> Response:
        op = "getReportDocument"
        refused = guard(request, op)
        if refused is not None:
            return refused
        document_id = request.path_params["reportDocumentId"]
        row = reports.by_document_id(document_id, ctx.now())
        if row is None:
            return sp_error(404, "NotFound", f"Report document {document_id} not found.", "", RATE_LIMITS[op][0])
        return sp_json({"reportDocumentId": document_id, "url": signer.url(document_id)}, limit=RATE_LIMITS[op][0])

    async def download_document(request: Request) -> Response:
        document_id = request.path_params["reportDocumentId"]
        refusal = signer.refusal(document_id, request.query_params)
        if refusal is not None:
            return refusal
        row = reports.by_document_id(document_id, ctx.now())
        if row is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", {"Key": document_id})
        return Response(reports.document(row).encode("utf-8"), media_type="text/plain; charset=utf-8")

    async def not_found(request: Request) -> Response:
        return sp_error(404, "NotFound", "The requested resource does not exist.")

    routes = [
        Route("/auth/o2/token", lwa_token, methods=["POST"]),
        Route("/orders/2026-01-01/orders", search_orders, methods=["GET"]),
        Route("/orders/2026-01-01/orders/{orderId}", get_order, methods=["GET"]),
        Route("/reports/2021-06-30/reports", get_reports, methods=["GET"]),
        Route("/reports/2021-06-30/reports", create_report, methods=["POST"]),
        Route("/reports/2021-06-30/reports/{reportId}", get_report, methods=["GET"]),
        Route("/reports/2021-06-30/documents/{reportDocumentId}", get_report_document, methods=["GET"]),
        Route("/_sandbox/documents/{reportDocumentId}", download_document, methods=["GET"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    # reachable from tests through the mount: the token table and the URL signer
    app.state.lwa_tokens = tokens
    app.state.document_signer = signer
    app.state.order_book = order_book
    return app
