"""NetSuite SuiteTalk REST emulator: record service, SuiteQL, async jobs and the OAuth 2.0 token endpoint.

Mounted at ``/netsuite``, standing for ``https://{accountId}.suitetalk.api.netsuite.com``.

Endpoints
- ``POST /services/rest/auth/oauth2/v1/token``: ``grant_type=client_credentials`` with the client
  authenticated by HTTP Basic (client_id:client_secret), or by the M2M form
  (``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a JWT
  ``client_assertion``); ``grant_type=refresh_token``. Access tokens last 3600 s (wall clock).
- ``/services/rest/record/v1/{recordType}[/{id}|/eid:{externalId}]``: collections with
  ``limit``/``offset``/``q``, single records with ``expandSubResources``/``fields``, and
  writes: POST creates (204 + Location), PATCH updates, PUT on ``eid:`` upserts.
- ``POST /services/rest/query/v1/suiteql`` (header ``Prefer: transient``).
- ``GET /services/rest/async/v1/job/{id}[/task[/{taskId}[/result]]]`` for writes sent with
  ``Prefer: respond-async`` (idempotent with ``X-NetSuite-Idempotency-Key``).

Governance: at most 5 requests in progress per account (the shared-tier limit); one more is
answered 429 with ``o:errorCode`` ``CONCURRENCY_LIMIT_EXCEEDED``.

What the JWT (M2M) form checks: the assertion is three base64url parts; the header has
``typ`` JWT, an ``alg`` among PS256/384/512 and ES256/384/512 and a ``kid``; the payload's
``iss`` is the client id, ``aud`` names this token endpoint, ``scope`` includes
``rest_webservices`` or ``suite_analytics``, ``exp`` is in the future and at most 60 minutes
after ``iat``. The signature is not verified: the sandbox has no certificate mapping.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from urllib.parse import urlencode

import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .netsuite_filter import FilterError, compile_query, parse_query
from .netsuite_records import (
    DEFAULT_STATUS, RECORD_TYPES, TRANSACTION_TYPES, TYPE_BY_LOWER, UTC_DT, Books, build_books, plan_ids,
    render_header, render_line,
)
from .netsuite_suiteql import SuiteQLDatabase, SuiteQLError, row_objects, transaction_tables, translate
from .throttle import ConcurrencyGate

SOURCE = "netsuite"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 7 * 24 * 3600
CONCURRENCY_LIMIT = 5
MAX_PAGE = 1000
JWT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_ALGORITHMS = {"PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
ENTITY_DATE_FIELD = {"customer": "dateCreated", "vendor": "dateCreated"}

SINGULAR = "application/vnd.oracle.resource+json; type=singular"
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"

_STATUS_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
                  502: "Bad Gateway", 503: "Service Unavailable"}
# the 401 example in Oracle's docs carries no section anchor; the 400 example does
_STATUS_SECTIONS = {400: "10.4.1", 403: "10.4.4", 404: "10.4.5", 405: "10.4.6",
                    500: "10.5.1", 502: "10.5.3", 503: "10.5.4"}


# ---------------------------------------------------------------- error bodies
def error_response(status: int, code: str, detail: str, headers: dict | None = None, **extra: str) -> Response:
    """A NetSuite REST error: ``{type, title, status, o:errorDetails[{detail, o:errorCode, ...}]}``."""
    section = _STATUS_SECTIONS.get(status)
    body = {
        "type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html" + (f"#sec{section}" if section else ""),
        "title": _STATUS_TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code, **extra}],
    }
    return Response(json.dumps(body), status_code=status, media_type=ERROR_TYPE, headers=headers)


def throttled(retry_after: float) -> Response:
    """NetSuite's answer when the account's concurrency limit is exceeded."""
    # UNVERIFIED: Oracle documents "Too Many Requests" for REST but not the exact o:errorCode;
    # CONCURRENCY_LIMIT_EXCEEDED is our choice (RESTlets say SSS_REQUEST_LIMIT_EXCEEDED).
    return error_response(
        429, "CONCURRENCY_LIMIT_EXCEEDED",
        "Concurrent request limit exceeded. Request blocked.",
        headers={"Retry-After": str(max(1, int(round(retry_after))))},
    )


def server_error(status: int) -> Response:
    """A 5xx in NetSuite's error shape."""
    return error_response(status, "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: sandbox-injected")


def _invalid_login() -> Response:
    return error_response(
        401, "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
        "Setup > Users/Roles > User Management > View Login Audit Trail.",
    )


def _oauth_error(status: int, error: str, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sandbox_refresh_token(credentials) -> str:
    """The refresh token the sandbox accepts besides those it issued (deterministic per seed)."""
    return hashlib.sha256(f"closeloop-sandbox:{credentials.seed}:netsuite-refresh".encode()).hexdigest()[:64]


def _parse_body(raw: bytes):
    if not raw:
        return None
    return json.loads(raw)


@dataclass
class AccountState:
    """What one request reads: header and line frames per record type (world + client writes),
    the stored writes by type and id, and (built on first SuiteQL use) the analytics database."""

    now: datetime
    generation: int
    headers: dict[str, pl.DataFrame]
    lines: dict[str, pl.DataFrame]
    database: SuiteQLDatabase | None
    written: dict[str, dict[str, tuple]]

    def fits(self, now: datetime, generation: int, with_database: bool) -> bool:
        return self.now == now and self.generation == generation and (self.database is not None or not with_database)


class NetSuiteAccount:
    """One emulated NetSuite account: tokens, governance, the rendered books and the writes."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.creds = ctx.credentials
        self.gate = ConcurrencyGate(CONCURRENCY_LIMIT, ctx.throttle)
        self.ids = plan_ids(ctx.world)
        self.write_lock = threading.RLock()
        self.generation = 0  # bumped by every write: combined frames and the SuiteQL db are rebuilt
        self.snapshot_lock = threading.Lock()
        self.build_lock = threading.Lock()
        self.snapshot: AccountState | None = None
        self.base = ctx.source_url(SOURCE)

    # ------------------------------------------------------------ tokens
    def _sign(self, payload: dict) -> str:
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(self.creds.netsuite_client_secret.encode(), body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64url(mac)}"

    def _verify(self, token: str, kind: str) -> dict | None:
        try:
            body, mac = token.split(".")
            expected = _b64url(hmac.new(self.creds.netsuite_client_secret.encode(), body.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(mac, expected):
                return None
            payload = json.loads(_unb64url(body))
        except (ValueError, json.JSONDecodeError):
            return None
        if payload.get("typ") != kind or payload.get("acct") != self.creds.netsuite_account_id:
            return None
        if float(payload.get("exp", 0)) <= time.time():
            return None
        return payload

    def issue_access_token(self) -> dict:
        now = time.time()
        # self-contained and signed with the client secret: tokens survive a sandbox restart
        token = self._sign({"typ": "access", "acct": self.creds.netsuite_account_id, "iat": int(now),
                            "exp": now + ACCESS_TOKEN_SECONDS, "n": secrets.token_urlsafe(6)})
        return {"access_token": token, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "bearer"}

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return False
        return self._verify(header[7:].strip(), "access") is not None

    def _client_from_basic(self, request: Request) -> bool | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(client_id, self.creds.netsuite_client_id) and hmac.compare_digest(secret, self.creds.netsuite_client_secret)

    def _check_assertion(self, assertion: str, token_url: str) -> str | None:
        """Why a JWT client assertion is refused, or None when it passes the checks we make."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return "the client assertion is not a JWT"
        try:
            header = json.loads(_unb64url(parts[0]))
            payload = json.loads(_unb64url(parts[1]))
        except (ValueError, json.JSONDecodeError):
            return "the client assertion is not a JWT"
        if header.get("typ", "JWT").upper() != "JWT" or header.get("alg") not in JWT_ALGORITHMS or not header.get("kid"):
            return "unsupported JWT header (typ JWT, alg PS256/384/512 or ES256/384/512 and kid required)"
        if payload.get("iss") != self.creds.netsuite_client_id:
            return "iss is not a known client id"
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a.rstrip("/").endswith("/services/rest/auth/oauth2/v1/token") for a in audiences):
            return "aud must be the token endpoint"
        scope = payload.get("scope")
        scopes = scope if isinstance(scope, list) else re.split(r"[,\s]+", str(scope or ""))
        if not {"rest_webservices", "suite_analytics"} & {s.strip().lower() for s in scopes}:
            return "scope must include rest_webservices"
        try:
            exp, iat = float(payload["exp"]), float(payload["iat"])
        except (KeyError, TypeError, ValueError):
            return "exp and iat are required"
        if exp <= time.time() or exp - iat > 3600:
            return "the assertion is expired or lives longer than 60 minutes"
        return None

    async def token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return _oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        form = await request.form()
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_assertion_type") == JWT_ASSERTION_TYPE:
                reason = self._check_assertion(str(form.get("client_assertion") or ""), str(request.url))
                if reason:
                    return _oauth_error(400, "invalid_grant" if "expired" in reason else "invalid_client", reason)
                return _json(self.issue_access_token(), media_type="application/json")
            basic = self._client_from_basic(request)
            if not basic:
                return _oauth_error(401, "invalid_client")
            return _json(self.issue_access_token(), media_type="application/json")
        if grant == "refresh_token":
            basic = self._client_from_basic(request)
            if not basic:
                return _oauth_error(401, "invalid_client")
            refresh = str(form.get("refresh_token") or "")
            if not refresh:
                return _oauth_error(400, "invalid_request", "refresh_token is required")
            if refresh != sandbox_refresh_token(self.creds) and self._verify(refresh, "refresh") is None:
                return _oauth_error(400, "invalid_grant")
            return _json(self.issue_access_token(), media_type="application/json")
        if grant is None:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        return _oauth_error(400, "unsupported_grant_type")

    # ------------------------------------------------------------ books as of now + writes
    def books(self) -> Books:
        return self.ctx.cached((SOURCE, "books"), lambda: build_books(self.ctx.world, self.ctx.now(), self.ids))

    def state(self, with_database: bool = False) -> "AccountState":
        """The books with the client writes laid over them, for the clock now; the SuiteQL db when asked."""
        now = self.ctx.now()
        with self.snapshot_lock:
            snap = self.snapshot
            if snap and snap.fits(now, self.generation, with_database):
                return snap
        # one builder at a time: concurrent requests after a write or a clock move share one build
        with self.build_lock:
            with self.snapshot_lock:
                snap = self.snapshot
                if snap and snap.fits(now, self.generation, with_database):
                    return snap
                generation = self.generation
            return self._build_state(now, generation, with_database)

    def _build_state(self, now: datetime, generation: int, with_database: bool):
        books = self.books()
        headers, lines, written = self._combine(books, now)
        database = None
        if with_database:
            database = SuiteQLDatabase(transaction_tables(headers, lines), now)
        snap = AccountState(now, generation, headers, lines, database, written)
        with self.snapshot_lock:
            if self.generation == generation:
                self.snapshot = snap
        return snap

    def _combine(self, books: Books, now: datetime):
        """World frames with client writes laid over them (PATCHed world records, created records)."""
        headers = dict(books.headers)
        lines = dict(books.lines)
        written: dict[str, dict[str, tuple]] = {}
        for record_type in RECORD_TYPES:
            records = [r for r in self.ctx.store.all(SOURCE, record_type) if _instant(r.created_at) <= now]
            if not records:
                continue
            written[record_type] = {r.record_id: (r.payload, _instant(r.created_at), _instant(r.updated_at)) for r in records}
            frame = headers[record_type]
            # a PATCH stamped after the clock (the clock was set back) is not seen yet
            overlays = [r for r in records if r.payload.get("origin") == "world" and _instant(r.updated_at) <= now]
            if overlays:
                frame = _apply_overlays(frame, overlays)
            created = [r for r in records if r.payload.get("origin") == "client"]
            if created:
                rows = [_index_row(record_type, int(r.record_id), r.payload["fields"], _instant(r.created_at), min(_instant(r.updated_at), now))
                        for r in created]
                new = pl.DataFrame(rows, schema={k: frame.schema[k] for k in rows[0] if k in frame.schema} | {
                    k: v for k, v in _INDEX_TYPES.items() if k in rows[0] and k not in frame.schema})
                frame = pl.concat([frame, new], how="diagonal_relaxed")
                line_rows = [dict(l, _parent=int(r.record_id)) for r in created for l in _line_rows(r.payload["fields"])]
                if line_rows:
                    extra = pl.DataFrame(line_rows, infer_schema_length=None)
                    base = lines.get(record_type)
                    lines[record_type] = pl.concat([base, extra], how="diagonal_relaxed") if base is not None else extra
            headers[record_type] = frame.sort("id")
        for record_type in headers:
            if record_type not in written:
                headers[record_type] = headers[record_type].sort("id")
        return headers, lines, written

    def find_by_external_id(self, record_type: str, external_id: str) -> int | None:
        headers = self.state().headers
        frame = headers[record_type]
        if "externalId" not in frame.columns:
            return None
        hit = frame.filter(pl.col("externalId") == external_id)
        return int(hit["id"][0]) if hit.height else None

    # ------------------------------------------------------------ record reads
    def collection(self, request: Request, record_type: str) -> Response:
        params = request.query_params
        limit, offset, problem = _paging(params)
        if problem:
            return problem
        headers = self.state().headers
        frame = headers[record_type]
        q = params.get("q")
        if q:
            try:
                schema = {k: v for k, v in frame.schema.items() if not k.startswith("_")}
                frame = frame.filter(compile_query(parse_query(q), schema))
            except FilterError as exc:
                return error_response(400, "INVALID_PARAMETER", f"Invalid search query. Detailed unprocessed description follows. {exc}",
                                      **{"o:errorQueryParam": "q"})
        total = frame.height
        page = frame["id"].slice(offset, limit).to_list()
        href = f"{self.base}/services/rest/record/v1/{request.path_params['record_type']}"
        items = [{"links": [{"rel": "self", "href": f"{self.base}/services/rest/record/v1/{record_type.lower()}/{i}"}], "id": str(i)} for i in page]
        items = self.ctx.faults[SOURCE].mutate(items, ("id",))
        body = _envelope(href, {"q": q} if q else {}, limit, offset, total, items)
        return _json(body, media_type=COLLECTION)

    def _lookup(self, record_type: str, raw_id: str):
        """(internal id, header row) of a record by internal id or ``eid:``; (None, None) when absent."""
        headers = self.state().headers
        frame = headers[record_type]
        if raw_id.lower().startswith("eid:"):
            if "externalId" not in frame.columns:
                return None, None
            hit = frame.filter(pl.col("externalId") == raw_id[4:])
        else:
            if not raw_id.isdigit():
                return None, None
            hit = frame.filter(pl.col("id") == int(raw_id))
        if not hit.height:
            return None, None
        row = hit.row(0, named=True)
        return int(row["id"]), row

    def record(self, request: Request, record_type: str, raw_id: str) -> Response:
        record_id, row = self._lookup(record_type, raw_id)
        if record_id is None:
            return _not_found(record_type, raw_id)
        expand = request.query_params.get("expandSubResources", "false").lower() == "true"
        body = self.render(record_type, record_id, row, expand)
        fields = request.query_params.get("fields")
        if fields:
            wanted = {f.strip() for f in fields.split(",")} | {"id", "links"}
            body = {k: v for k, v in body.items() if k in wanted}
        return _json(body, media_type=SINGULAR)

    def render(self, record_type: str, record_id: int, row: dict, expand: bool) -> dict:
        state = self.state()
        headers, lines, written = state.headers, state.lines, state.written
        href = f"{self.base}/services/rest/record/v1/{record_type.lower()}/{record_id}"
        body = {"links": [{"rel": "self", "href": href}]}
        body.update(render_header(record_type, row, self.base))
        stored = written.get(record_type, {}).get(str(record_id))
        sublists: dict[str, list[dict]] = {}
        if stored is None or stored[0].get("origin") == "world":
            line_frame = lines.get(record_type)
            if line_frame is not None and line_frame.height:
                rows = line_frame.filter(pl.col("_parent") == record_id).sort("line").to_dicts()
                sublists[_LINE_SUBLIST.get(record_type, "item")] = [render_line(record_type, "item", record_id, r, self.base) for r in rows]
            for name, frame in self.books().extra_sublists.get(record_type, {}).items():
                rows = frame.filter(pl.col("_parent") == record_id).sort("line").to_dicts()
                sublists[name] = [render_line(record_type, name, record_id, r, self.base) for r in rows]
        if stored is not None:
            fields = stored[0]["fields"]
            for key, value in fields.items():
                if isinstance(value, dict) and isinstance(value.get("items"), list):
                    sublists[key] = [self._client_line(record_type, record_id, key, index, line, headers)
                                     for index, line in enumerate(value["items"], start=1) if isinstance(line, dict)]
                elif key not in ("id", "links", "createdDate", "lastModifiedDate", "dateCreated", "status", "total"):
                    body[key] = self._reference(key, value, headers, record_type)
        for name, items in sublists.items():
            link = {"rel": "self", "href": f"{href}/{name}"}
            body[name] = {"links": [link], "items": items, "totalResults": len(items)} if expand else {"links": [link]}
        return body

    def _reference(self, key: str, value, headers: dict, record_type: str):
        """A reference a client sent as ``{"id": ...}``, answered as NetSuite does: id, refName, links."""
        target = {"entity": "vendor" if record_type == "purchaseOrder" else "customer", "customer": "customer",
                  "item": "inventoryItem", "createdFrom": None}.get(key, "")
        if target == "" or not isinstance(value, dict) or value.get("id") is None:
            return value
        out = {"id": str(value["id"])}
        if target:
            out["links"] = [{"rel": "self", "href": f"{self.base}/services/rest/record/v1/{target.lower()}/{value['id']}"}]
            frame = headers.get(target)
            name_column = {"inventoryItem": "itemId"}.get(target, "companyName")
            if frame is not None and str(value["id"]).isdigit() and name_column in frame.columns:
                hit = frame.filter(pl.col("id") == int(value["id"]))
                if hit.height and hit[name_column][0] is not None:
                    out["refName"] = hit[name_column][0]
        return {**value, **out}

    def _client_line(self, record_type: str, record_id: int, sublist: str, index: int, line: dict, headers: dict) -> dict:
        out = {"links": [{"rel": "self", "href": f"{self.base}/services/rest/record/v1/{record_type.lower()}/{record_id}/{sublist}/{line.get('line', index)}"}]}
        for key, value in line.items():
            out[key] = self._reference(key, value, headers, record_type)
        return out

    # ------------------------------------------------------------ writes
    def write(self, method: str, record_type: str, raw_id: str | None, body: dict) -> Response:
        """Apply one write; 204 with the record's Location, or a NetSuite error."""
        if not isinstance(body, dict):
            return error_response(400, "INVALID_CONTENT", "The request body must be a JSON object.")
        with self.write_lock:
            now = self.ctx.now()
            if method == "POST":
                external_id = body.get("externalId")
                if external_id and self.find_by_external_id(record_type, str(external_id)) is not None:
                    # UNVERIFIED code: NetSuite refuses a second record with the same external id
                    return error_response(400, "DUP_RCRD", f"A {record_type} record with external ID {external_id} already exists.",
                                          **{"o:errorPath": "externalId"})
                return self._create(record_type, body, now, external_id)
            if method == "PUT":
                if not raw_id or not raw_id.lower().startswith("eid:"):
                    return error_response(400, "INVALID_PARAMETER", "Upsert (PUT) needs an external ID in the URL: /{recordType}/eid:{externalId}.")
                external_id = raw_id[4:]
                if "id" in body:
                    return error_response(400, "INVALID_CONTENT", "Upsert does not accept an internal ID in the body.", **{"o:errorPath": "id"})
                existing = self.find_by_external_id(record_type, external_id)
                if existing is None:
                    return self._create(record_type, dict(body, externalId=external_id), now, external_id)
                return self._update(record_type, existing, body, now)
            record_id, _ = self._lookup(record_type, raw_id or "")
            if record_id is None:
                return _not_found(record_type, raw_id or "")
            return self._update(record_type, record_id, body, now)

    def _validate(self, record_type: str, fields: dict, whole_record: bool = True) -> Response | None:
        """NetSuite's refusals of a body: bad sublist values; for a whole record, missing entity or unbalanced journal."""
        if whole_record and record_type in ("purchaseOrder", "invoice", "salesOrder", "creditMemo", "itemFulfillment"):
            entity = fields.get("entity")
            if not isinstance(entity, dict) or not (entity.get("id") or entity.get("externalId")):
                label = "Vendor" if record_type == "purchaseOrder" else "Customer"
                return error_response(400, "USER_ERROR", f"Error while accessing a resource. Please enter value(s) for: {label}.",
                                      **{"o:errorPath": "entity"})
        for name, value in fields.items():
            if not (isinstance(value, dict) and "items" in value):
                continue
            if not isinstance(value["items"], list):
                return error_response(400, "INVALID_CONTENT", f"Sublist {name} items must be a list.", **{"o:errorPath": f"{name}.items"})
            for index, line in enumerate(value["items"]):
                if not isinstance(line, dict):
                    return error_response(400, "INVALID_CONTENT", "A sublist line must be an object.", **{"o:errorPath": f"{name}.items[{index}]"})
                for key in ("quantity", "rate", "amount", "debit", "credit"):
                    if line.get(key) is not None and (isinstance(line[key], bool) or not isinstance(line[key], (int, float))):
                        return error_response(400, "INVALID_CONTENT",
                                              f"Error while accessing a resource. You have entered an Invalid Field Value {line[key]} for the following field: {key}",
                                              **{"o:errorPath": f"{name}.items[{index}].{key}"})
        if whole_record and record_type == "journalEntry":
            items = (fields.get("line") or {}).get("items") if isinstance(fields.get("line"), dict) else None
            if not items:
                return error_response(400, "USER_ERROR", "Error while accessing a resource. You must enter at least one line item for this transaction.",
                                      **{"o:errorPath": "line"})
            debit = round(sum(float(l.get("debit") or 0) for l in items), 2)
            credit = round(sum(float(l.get("credit") or 0) for l in items), 2)
            if debit != credit:
                return error_response(400, "USER_ERROR", "Error while accessing a resource. The transaction is not in balance.",
                                      **{"o:errorPath": "line"})
        return None

    def _create(self, record_type: str, body: dict, now: datetime, external_id) -> Response:
        fields = {k: v for k, v in body.items() if k not in ("id", "links")}
        problem = self._validate(record_type, fields)
        if problem:
            return problem
        record_id = self.ctx.store.next_id(f"{SOURCE}:internalid", self.ids.client_base)
        if record_type in TRANSACTION_TYPES:
            code = TRANSACTION_TYPES[record_type][0]
            fields.setdefault("tranId", f"{code.upper()}{record_id}")
            fields.setdefault("tranDate", now.date().isoformat())
            if record_type in DEFAULT_STATUS and "status" not in fields:
                fields["status"] = {"id": DEFAULT_STATUS[record_type], "refName": DEFAULT_STATUS[record_type]}
        if external_id is not None:
            fields["externalId"] = str(external_id)
        _fill_line_amounts(fields)
        self.ctx.store.put(SOURCE, record_type, str(record_id), {"origin": "client", "fields": fields}, at=now)
        self._bump()
        return self._written(record_type, record_id)

    def _update(self, record_type: str, record_id: int, body: dict, now: datetime) -> Response:
        stored = self.ctx.store.get(SOURCE, record_type, str(record_id))
        payload = stored.payload if stored else {"origin": "world", "fields": {}}
        fields = dict(payload["fields"])
        fields.update({k: v for k, v in body.items() if k not in ("id", "links")})
        # a PATCH of a world record carries only the changed fields: check their values only
        problem = self._validate(record_type, fields, whole_record=payload["origin"] == "client")
        if problem:
            return problem
        _fill_line_amounts(fields)
        self.ctx.store.put(SOURCE, record_type, str(record_id), {"origin": payload["origin"], "fields": fields}, at=now)
        self._bump()
        return self._written(record_type, record_id)

    def _written(self, record_type: str, record_id: int) -> Response:
        location = f"{self.base}/services/rest/record/v1/{record_type.lower()}/{record_id}"
        return Response(status_code=204, headers={"Location": location})

    def _bump(self) -> None:
        with self.snapshot_lock:
            self.generation += 1
            self.snapshot = None

    # ------------------------------------------------------------ async jobs
    def submit_async(self, request: Request, method: str, record_type: str, raw_id: str | None, body) -> Response:
        key = request.headers.get("x-netsuite-idempotency-key")
        with self.write_lock:
            if key:
                previous = self.ctx.store.remembered(SOURCE, f"async:{key}")
                if previous is not None:
                    location = json.loads(previous.body)["location"]
                    return error_response(
                        400, "IDEMPOTENCY_ERROR",
                        "A request with the same idempotency key is already submitted. See the job in the Location header.",
                        headers={"Location": location}, **{"o:errorHeader": "X-NetSuite-Idempotency-Key"},
                    )
            now = self.ctx.now()
            result = self.write(method, record_type, raw_id, body)
            job_id = self.ctx.store.next_id(f"{SOURCE}:asyncjob", 0)
            task = {
                "status": result.status_code,
                "location": result.headers.get("location"),
                "body": result.body.decode() if result.body else None,
            }
            stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.ctx.store.put(SOURCE, "asyncJob", str(job_id), {"task": task, "started": stamp, "ended": stamp}, at=now)
            location = f"{self.base}/services/rest/async/v1/job/{job_id}"
            if key:
                self.ctx.store.remember(SOURCE, f"async:{key}", key, 202, json.dumps({"location": location}), at=now)
        return Response(status_code=202, headers={"Location": location, "Preference-Applied": "respond-async"})

    def job(self, job_id: str, part: str | None, task_id: str | None, result: bool) -> Response:
        stored = self.ctx.store.get(SOURCE, "asyncJob", job_id)
        if stored is None:
            return error_response(404, "NONEXISTENT_ID", f"The async job {job_id} does not exist.")
        job_href = f"{self.base}/services/rest/async/v1/job/{job_id}"
        task = stored.payload["task"]
        succeeded = task["status"] < 400
        if part is None:
            return _json({"links": [{"rel": "self", "href": job_href}], "completed": True, "id": job_id,
                          "progress": "succeeded" if succeeded else "failed",
                          "task": {"links": [{"rel": "self", "href": f"{job_href}/task"}]}}, media_type=SINGULAR)
        if task_id is None:
            return _json({"links": [{"rel": "self", "href": f"{job_href}/task"}], "count": 1, "hasMore": False,
                          "items": [{"links": [{"rel": "self", "href": f"{job_href}/task/1"}], "id": "1"}],
                          "offset": 0, "totalResults": 1}, media_type=COLLECTION)
        if task_id != "1":
            return error_response(404, "NONEXISTENT_ID", f"The task {task_id} of async job {job_id} does not exist.")
        if not result:
            return _json({"links": [{"rel": "related", "href": f"{job_href}/task/1/result"}, {"rel": "self", "href": f"{job_href}/task/1"}],
                          "completed": True, "startTime": stored.payload["started"], "endTime": stored.payload["ended"],
                          "id": "1", "progress": "succeeded" if succeeded else "failed"}, media_type=SINGULAR)
        if succeeded:
            return Response(status_code=204, headers={"Location": task["location"]} if task["location"] else None)
        return Response(task["body"] or "", status_code=task["status"], media_type=ERROR_TYPE)

    # ------------------------------------------------------------ SuiteQL
    def suiteql(self, request: Request, raw: bytes) -> Response:
        prefer = request.headers.get("prefer", "")
        if "transient" not in prefer.lower():
            # UNVERIFIED: the exact code for a missing "Prefer: transient" header
            return error_response(400, "INVALID_HEADER", "The header 'Prefer: transient' is required for SuiteQL queries.",
                                  **{"o:errorHeader": "Prefer"})
        limit, offset, problem = _paging(request.query_params)
        if problem:
            return problem
        try:
            body = _parse_body(raw)
        except json.JSONDecodeError:
            return error_response(400, "INVALID_CONTENT", "The request body is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("q"), str):
            return error_response(400, "INVALID_CONTENT", "The request body must be a JSON object with the query in 'q'.", **{"o:errorPath": "q"})
        database = self.state(with_database=True).database
        try:
            names, rows = database.run(translate(body["q"], database.now))
        except SuiteQLError as exc:
            return error_response(400, "INVALID_PARAMETER", f"Invalid search query. Detailed unprocessed description follows. {exc}",
                                  **{"o:errorPath": "q"})
        total = len(rows)
        items = self.ctx.faults[SOURCE].mutate(row_objects(names, rows[offset: offset + limit]), ("links", "id"))
        href = f"{self.base}/services/rest/query/v1/suiteql"
        return _json(_envelope(href, {}, limit, offset, total, items), media_type=COLLECTION)


_LINE_SUBLIST = {"journalEntry": "line"}
_INDEX_TYPES = {
    "id": pl.Int64, "tranId": pl.String, "tranDate": pl.Date, "createdDate": UTC_DT, "dateCreated": UTC_DT,
    "lastModifiedDate": UTC_DT, "status": pl.String, "entity": pl.Int64, "customer": pl.Int64, "externalId": pl.String,
    "memo": pl.String, "total": pl.Float64, "currency": pl.Int64, "otherRefNum": pl.String, "email": pl.String,
    "companyName": pl.String, "entityId": pl.String, "itemId": pl.String, "createdFrom": pl.Int64, "dueDate": pl.Date,
}


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)


def _ref_id(value):
    if isinstance(value, dict):
        value = value.get("id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _as_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _status_name(value) -> str | None:
    if isinstance(value, dict):
        return value.get("refName") or value.get("id")
    return value if isinstance(value, str) else None


def _line_rows(fields: dict) -> list[dict]:
    rows = []
    for sublist in ("item", "line", "expense"):
        value = fields.get(sublist)
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            for index, line in enumerate(value["items"], start=1):
                amount = line.get("amount")
                if amount is None and (line.get("debit") or line.get("credit")):
                    amount = float(line.get("debit") or 0) - float(line.get("credit") or 0)
                rows.append({
                    "line": int(line.get("line") or index),
                    "item": _ref_id(line.get("item")),
                    "_itemName": (line.get("item") or {}).get("refName") if isinstance(line.get("item"), dict) else None,
                    "description": line.get("description") or line.get("memo"),
                    "quantity": float(line["quantity"]) if line.get("quantity") is not None else None,
                    "rate": float(line["rate"]) if line.get("rate") is not None else None,
                    "amount": float(amount) if amount is not None else None,
                })
    return rows


def _fill_line_amounts(fields: dict) -> None:
    """Lines without an amount get quantity x rate, as NetSuite computes it."""
    for sublist in ("item", "expense"):
        value = fields.get(sublist)
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            for index, line in enumerate(value["items"], start=1):
                if isinstance(line, dict):
                    line.setdefault("line", index)
                    if line.get("amount") is None and line.get("quantity") is not None and line.get("rate") is not None:
                        line["amount"] = round(float(line["quantity"]) * float(line["rate"]), 2)


def _record_total(fields: dict) -> float | None:
    if isinstance(fields.get("total"), (int, float)):
        return float(fields["total"])
    lines = _line_rows(fields)
    if not lines:
        return None
    if isinstance(fields.get("line"), dict):  # a journal's total is its debits
        return round(sum(float(l.get("debit") or 0) for l in fields["line"].get("items", [])), 2)
    return round(sum(l["amount"] or 0 for l in lines), 2)


def _index_row(record_type: str, record_id: int, fields: dict, created: datetime, updated: datetime) -> dict:
    """The filterable header row of a record a client created."""
    row = {"id": record_id, "lastModifiedDate": updated}
    row[ENTITY_DATE_FIELD.get(record_type, "createdDate")] = created
    if record_type in TRANSACTION_TYPES:
        row.update(tranId=fields.get("tranId"), tranDate=_as_date(fields.get("tranDate")), status=_status_name(fields.get("status")),
                   total=_record_total(fields), memo=fields.get("memo"), otherRefNum=fields.get("otherRefNum"),
                   currency=_ref_id(fields.get("currency")), dueDate=_as_date(fields.get("dueDate")),
                   createdFrom=_ref_id(fields.get("createdFrom")))
        entity_field = "customer" if record_type == "customerPayment" else "entity"
        row[entity_field] = _ref_id(fields.get(entity_field))
    else:
        for key in ("companyName", "entityId", "email", "itemId"):
            if key in fields:
                row[key] = fields.get(key)
    row["externalId"] = fields.get("externalId")
    # clients may send numbers where NetSuite keeps text (a numeric memo, an integer externalId)
    for key, value in row.items():
        if value is not None and _INDEX_TYPES.get(key) == pl.String and not isinstance(value, str):
            row[key] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return row


def _apply_overlays(frame: pl.DataFrame, overlays) -> pl.DataFrame:
    """World records a client PATCHed: later lastModifiedDate and the simple fields it changed."""
    updates = []
    for record in overlays:
        fields = record.payload["fields"]
        change = {"id": int(record.record_id), "_patched": _instant(record.updated_at)}
        for key in ("memo", "externalId", "otherRefNum", "tranId", "email", "companyName"):
            if key in fields and key in frame.columns and (fields[key] is None or isinstance(fields[key], str)):
                change[key] = fields[key]
        if "status" in fields and "status" in frame.columns:
            change["status"] = _status_name(fields["status"])
        updates.append(change)
    patch = pl.DataFrame(updates, infer_schema_length=None).with_columns(pl.col("_patched").cast(UTC_DT))
    out = frame.join(patch, on="id", how="left", suffix="__new")
    for key in patch.columns:
        if key.endswith("__new") or key in ("id", "_patched"):
            continue
        if f"{key}__new" in out.columns:
            out = out.with_columns(pl.coalesce(f"{key}__new", key).alias(key)).drop(f"{key}__new")
    if "lastModifiedDate" in out.columns:
        out = out.with_columns(pl.max_horizontal("lastModifiedDate", "_patched").alias("lastModifiedDate"))
    return out.drop("_patched")


def _paging(params) -> tuple[int, int, Response | None]:
    try:
        limit = int(params.get("limit", MAX_PAGE))
    except ValueError:
        limit = -1
    if limit < 1 or limit > MAX_PAGE:
        return 0, 0, error_response(400, "INVALID_PARAMETER", f"Invalid value for the limit parameter. The value must be between 1 and {MAX_PAGE}.",
                                    **{"o:errorQueryParam": "limit"})
    try:
        offset = int(params.get("offset", 0))
    except ValueError:
        offset = -1
    if offset < 0:
        return 0, 0, error_response(400, "INVALID_PARAMETER", "Invalid value for the offset parameter. The value must be 0 or more.",
                                    **{"o:errorQueryParam": "offset"})
    return limit, offset, None


def _envelope(href: str, extra: dict, limit: int, offset: int, total: int, items: list[dict]) -> dict:
    """The collection envelope: links (self, first, prev, next, last), count, hasMore, items, offset, totalResults."""
    def link(rel: str, at: int) -> dict:
        return {"rel": rel, "href": f"{href}?{urlencode({**extra, 'limit': limit, 'offset': at})}"}

    # as in Oracle's example: the first page lists next, last and self; first/prev appear once
    # past the first page, next/last while more pages remain
    has_more = offset + limit < total
    links = []
    if offset > 0:
        links += [link("first", 0), link("prev", max(0, offset - limit))]
    if has_more:
        links += [link("next", offset + limit), link("last", ((total - 1) // limit) * limit)]
    links.append(link("self", offset))
    return {"links": links, "count": len(items), "hasMore": has_more, "items": items, "offset": offset, "totalResults": total}


def _json(body, status: int = 200, media_type: str = SINGULAR, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=media_type, headers=headers)


def _not_found(record_type: str, raw_id: str) -> Response:
    return error_response(404, "NONEXISTENT_ID", f"The record instance does not exist. Provide a valid record instance ID. ({record_type} {raw_id})")


def _record_type(name: str) -> str | None:
    return TYPE_BY_LOWER.get(name.lower())


def build(ctx) -> Starlette:
    """The NetSuite app; routes relative to /netsuite."""
    account = NetSuiteAccount(ctx)

    def governed(handler):
        """Bearer auth, then the account's concurrency gate around the whole request."""
        async def endpoint(request: Request) -> Response:
            if not account.authorized(request):
                return _invalid_login()
            if not account.gate.enter():
                return throttled(1.0)
            try:
                return await handler(request)
            finally:
                account.gate.leave()
        return endpoint

    async def record_collection(request: Request) -> Response:
        record_type = _record_type(request.path_params["record_type"])
        if record_type is None:
            return _unknown_type(request.path_params["record_type"])
        if request.method == "GET":
            return await run_in_threadpool(account.collection, request, record_type)
        return await _write(request, "POST", record_type, None)

    async def record_instance(request: Request) -> Response:
        record_type = _record_type(request.path_params["record_type"])
        if record_type is None:
            return _unknown_type(request.path_params["record_type"])
        raw_id = request.path_params["record_id"]
        if request.method == "GET":
            return await run_in_threadpool(account.record, request, record_type, raw_id)
        if request.method == "PUT" and not raw_id.lower().startswith("eid:"):
            return error_response(405, "METHOD_NOT_ALLOWED", "PUT is only supported for upsert by external ID (eid:).")
        return await _write(request, request.method, record_type, raw_id)

    async def _write(request: Request, method: str, record_type: str, raw_id: str | None) -> Response:
        raw = await request.body()
        try:
            body = _parse_body(raw)
        except json.JSONDecodeError:
            return error_response(400, "INVALID_CONTENT", "The request body is not valid JSON.")
        if body is None:
            body = {}
        if "respond-async" in request.headers.get("prefer", "").lower():
            return await run_in_threadpool(account.submit_async, request, method, record_type, raw_id, body)
        return await run_in_threadpool(account.write, method, record_type, raw_id, body)

    async def suiteql(request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(account.suiteql, request, raw)

    async def job(request: Request) -> Response:
        p = request.path_params
        path = request.url.path
        part = "task" if "/task" in path else None
        return await run_in_threadpool(account.job, p["job_id"], part, p.get("task_id"), path.rstrip("/").endswith("/result"))

    routes = [
        Route("/services/rest/auth/oauth2/v1/token", account.token, methods=["POST"]),
        Route("/services/rest/record/v1/{record_type}", governed(record_collection), methods=["GET", "POST"]),
        Route("/services/rest/record/v1/{record_type}/{record_id}", governed(record_instance), methods=["GET", "PATCH", "PUT"]),
        Route("/services/rest/query/v1/suiteql", governed(suiteql), methods=["POST"]),
        Route("/services/rest/async/v1/job/{job_id}", governed(job), methods=["GET"]),
        Route("/services/rest/async/v1/job/{job_id}/task", governed(job), methods=["GET"]),
        Route("/services/rest/async/v1/job/{job_id}/task/{task_id}", governed(job), methods=["GET"]),
        Route("/services/rest/async/v1/job/{job_id}/task/{task_id}/result", governed(job), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.netsuite = account
    return app


def _unknown_type(name: str) -> Response:
    return error_response(404, "NONEXISTENT_ID", f"Record type '{name}' does not exist or is not supported by the sandbox.")
