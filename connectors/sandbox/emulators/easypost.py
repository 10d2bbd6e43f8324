"""EasyPost v2 emulator (carrier tracking and claims) under /easypost.

What it serves (real base https://api.easypost.com):

- ``GET /v2/trackers`` -> ``{"trackers": [...], "has_more": bool}``, newest first, paged with
  ``before_id``/``after_id`` and ``page_size``; ``GET /v2/trackers/{id}``; ``POST /v2/trackers``
  (de-duplicated on carrier + tracking code).
- ``POST /v2/claims``, ``GET /v2/claims`` -> ``{"claims": [...], "has_more": bool}``, ``GET /v2/claims/{id}``.

A tracker exists from its creation (the label) and shows the scans at or before the sandbox
clock; its status, status detail and updated time come from the latest of them. Index (list)
endpoints are limited to 5 requests per second.
"""
from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import polars as pl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .throttle import SlidingWindow

SOURCE = "easypost"
LIST_REQUESTS_PER_SECOND = 5
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TRACKER_FEE = "0.02000"
FINAL_STATUSES = {"delivered", "return_to_sender", "failure", "cancelled", "error"}
CLAIM_TYPES = ("damage", "loss", "theft")
# ids of trackers and claims clients create: a fixed marker then a sequence, so they never
# collide with the world's ids and still sort by creation
CREATED_ID_MARKER = "c1"


def created_id(prefix: str, n: int) -> str:
    return f"{prefix}_{CREATED_ID_MARKER}{n:030x}"


# ----------------------------------------------------------------------------- formats and errors
def format_instant(value: datetime | None) -> str | None:
    """EasyPost instants: ``2026-04-20T18:38:05Z``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant_param(text: str | None) -> datetime | None:
    """A datetime query parameter; naive values are taken as UTC. Raises ValueError."""
    if text is None or text == "":
        return None
    value = datetime.fromisoformat(text.strip().replace(" ", "+").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, code: str, message: str, errors: list | None = None) -> Response:
    """EasyPost's error envelope: ``{"error": {"code", "message", "errors": [...]}}``."""
    return _json({"error": {"code": code, "message": message, "errors": errors or []}}, status)


def throttled(retry_after: float) -> Response:
    """EasyPost's 429 (its error envelope; no retry header is documented, so none is sent)."""
    return error_response(429, "RATE_LIMITED", "You have exceeded the rate limit. Please slow down your requests and try again.")


def server_error(status: int) -> Response:
    """A 5xx in EasyPost's error envelope."""
    codes = {500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}
    return error_response(status, codes.get(status, "INTERNAL_SERVER_ERROR"),
                          "We're sorry, something went wrong. If the problem persists please contact support.")


def _not_found() -> Response:
    return error_response(404, "NOT_FOUND", "The requested resource could not be found.")


class InvalidParameter(ValueError):
    """A bad query or body parameter: answered 422 PARAMETER.INVALID naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(field)
        self.field = field
        self.message = message


def _location(city=None, state=None, country=None, zip_code=None) -> dict:
    return {"object": "TrackingLocation", "city": city, "state": state, "country": country, "zip": zip_code}


def _parse_place(text: str | None) -> dict | None:
    """'CICERO IL, 60804' -> a TrackingLocation."""
    if not text:
        return None
    place, _, zip_code = text.partition(",")
    parts = place.strip().rsplit(" ", 1)
    city, state = (parts[0], parts[1]) if len(parts) == 2 else (place.strip(), None)
    return _location(city or None, state, "US", zip_code.strip() or None)


# ----------------------------------------------------------------------------- trackers as of the clock
@dataclass
class TrackerRecord:
    """What a tracker is made of, before the clock decides which scans show."""

    id: str
    tracking_code: str
    carrier: str
    service: str | None
    created_at: datetime
    est_delivery_at: datetime | None
    weight_oz: float | None
    origin: str | None
    destination: str | None


TRACKER_SCHEMA = {
    "tracker_id": pl.String, "tracking_code": pl.String, "carrier": pl.String, "service": pl.String,
    "created_at": pl.Datetime("us", "UTC"), "est_delivery_at": pl.Datetime("us", "UTC"), "weight_oz": pl.Float64,
    "origin": pl.String, "destination": pl.String,
}


class TrackerBook:
    """World trackers and scans as frames; pages are rendered from them as of the clock."""

    def __init__(self, world):
        self.trackers = world.table("trackers").select(list(TRACKER_SCHEMA)).cast(TRACKER_SCHEMA).sort(
            ["created_at", "tracker_id"]
        )
        self.events = world.table("tracking_events").sort(["tracking_code", "seq"])

    def scans(self, codes: list[str], now: datetime) -> dict[str, list[dict]]:
        """The scans at or before ``now`` of some tracking codes, in scan order."""
        if not codes:
            return {}
        rows = self.events.filter(
            pl.col("tracking_code").is_in(pl.Series(codes, dtype=pl.String).implode()) & (pl.col("occurred_at") <= now)
        )
        out: dict[str, list[dict]] = {}
        for row in rows.to_dicts():
            out.setdefault(row["tracking_code"], []).append(row)
        return out


def tracker_records(frame: pl.DataFrame) -> list[TrackerRecord]:
    return [
        TrackerRecord(r["tracker_id"], r["tracking_code"], r["carrier"], r["service"], r["created_at"],
                      r["est_delivery_at"], r["weight_oz"], r["origin"], r["destination"])
        for r in frame.to_dicts()
    ]


def render_tracker(record: TrackerRecord, scans: list[dict], mode: str) -> dict:
    """The Tracker object for the scans visible now."""
    details = [
        {
            "object": "TrackingDetail",
            "message": s["message"],
            "description": None,
            "status": s["status"],
            "status_detail": s["status_detail"],
            "datetime": format_instant(s["occurred_at"]),
            "source": record.carrier,
            "carrier_code": None,
            "tracking_location": _location(s["city"], s["state"], s["country"], s["zip"]),
        }
        for s in scans
    ]
    latest = scans[-1] if scans else None
    status = latest["status"] if latest else "unknown"
    status_detail = latest["status_detail"] if latest else "unknown"
    updated = max([record.created_at] + [s["occurred_at"] for s in scans])
    delivery_attempts = [s["occurred_at"] for s in scans if s["status"] in ("delivered", "available_for_pickup", "return_to_sender")]
    public = base64.urlsafe_b64encode(f"tracker:{record.id}".encode()).decode().rstrip("=")
    return {
        "id": record.id,
        "object": "Tracker",
        "mode": mode,
        "tracking_code": record.tracking_code,
        "status": status,
        "status_detail": status_detail,
        "created_at": format_instant(record.created_at),
        "updated_at": format_instant(updated),
        "signed_by": None,
        "weight": record.weight_oz,
        "est_delivery_date": format_instant(record.est_delivery_at),
        "shipment_id": None,
        "carrier": record.carrier,
        "tracking_details": details,
        "fees": [{"object": "Fee", "type": "TrackerFee", "amount": TRACKER_FEE, "charged": True, "refunded": False}],
        "carrier_detail": {
            "object": "CarrierDetail",
            "service": record.service,
            "container_type": None,
            "est_delivery_date_local": None,
            "est_delivery_time_local": None,
            "origin_location": record.origin,
            "origin_tracking_location": _parse_place(record.origin),
            "destination_location": record.destination,
            "destination_tracking_location": _parse_place(record.destination),
            "guaranteed_delivery_date": None,
            "alternate_identifier": None,
            "initial_delivery_attempt": format_instant(min(delivery_attempts)) if delivery_attempts else None,
        },
        "public_url": f"https://track.easypost.com/{public}",
        "finalized": status in FINAL_STATUSES,
        "is_return": status == "return_to_sender",
    }


# ----------------------------------------------------------------------------- the app
class EasyPostApp:
    """The EasyPost emulator's handlers over one sandbox context."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.list_window = SlidingWindow(LIST_REQUESTS_PER_SECOND, 1.0, ctx.throttle)
        self._book: TrackerBook | None = None
        self._book_lock = threading.Lock()
        self._visible_memo: tuple | None = None
        self._write_lock = threading.Lock()
        # test keys (EZTK...) see test-mode objects, production keys (EZAK...) production ones
        self.mode = "test" if ctx.credentials.easypost_api_key.startswith("EZTK") else "production"

    @property
    def book(self) -> TrackerBook:
        with self._book_lock:
            if self._book is None:
                self._book = TrackerBook(self.ctx.world)
            return self._book

    # ---- guard: auth and, on index endpoints, the 5-per-second limit
    def guarded(self, handler, listing: bool = False):
        async def endpoint(request: Request) -> Response:
            key = _basic_username(request.headers.get("authorization"))
            if key is None:
                return error_response(401, "APIKEY.REQUIRED",
                                      "No API key was provided. Supply your API key as the HTTP Basic username.")
            if key != self.ctx.credentials.easypost_api_key:
                return error_response(401, "APIKEY.INVALID", "The API key provided is invalid.")
            if listing:
                admitted, wait = self.list_window.try_hit()
                if not admitted:
                    return throttled(wait)
            try:
                return await handler(request)
            except InvalidParameter as exc:
                return error_response(422, "PARAMETER.INVALID", "Invalid parameter.",
                                      [{"field": exc.field, "message": exc.message}])

        return endpoint

    # ---- trackers
    def visible_trackers(self) -> pl.DataFrame:
        """World trackers created at or before now plus the ones clients created, oldest first."""
        stamp = (self.ctx.now(), self.ctx.store.count(SOURCE, "tracker"))
        with self._book_lock:
            if self._visible_memo is not None and self._visible_memo[0] == stamp:
                return self._visible_memo[1]
        now = stamp[0]
        frame = self.book.trackers.filter(pl.col("created_at") <= now)
        rows = []
        for written in self.ctx.store.all(SOURCE, "tracker"):
            payload = written.payload
            created = datetime.fromisoformat(payload["created_at"])
            if created <= now:
                rows.append({"tracker_id": payload["id"], "tracking_code": payload["tracking_code"],
                             "carrier": payload["carrier"], "service": payload.get("service"), "created_at": created,
                             "est_delivery_at": _instant_or_none(payload.get("est_delivery_at")),
                             "weight_oz": payload.get("weight_oz"), "origin": payload.get("origin"),
                             "destination": payload.get("destination")})
        if rows:
            frame = pl.concat([frame, pl.DataFrame(rows, schema=TRACKER_SCHEMA)]).sort(["created_at", "tracker_id"])
        with self._book_lock:
            self._visible_memo = (stamp, frame)
        return frame

    def render(self, frame: pl.DataFrame) -> list[dict]:
        """Tracker objects for some rows, in their order, with the scans visible now."""
        records = tracker_records(frame)
        scans = self.book.scans(sorted({r.tracking_code for r in records}), self.ctx.now())
        return [render_tracker(r, scans.get(r.tracking_code, []), self.mode) for r in records]

    async def list_trackers(self, request: Request) -> Response:
        frame = self.visible_trackers()
        code = request.query_params.get("tracking_code")
        carrier = request.query_params.get("carrier")
        if code:
            frame = frame.filter(pl.col("tracking_code") == code)
        if carrier:
            frame = frame.filter(pl.col("carrier").str.to_lowercase() == carrier.lower())
        start, end = _datetime_bounds(request)
        if start:
            frame = frame.filter(pl.col("created_at") >= start)
        if end:
            frame = frame.filter(pl.col("created_at") <= end)
        ids = frame["tracker_id"]

        def position(tracker_id: str) -> int | None:
            hits = (ids == tracker_id).arg_true()
            return int(hits[0]) if hits.len() else None

        low, high, has_more = _id_window(request, frame.height, position)
        trackers = self.render(frame[low:high].reverse())
        trackers = self.ctx.faults[SOURCE].mutate(trackers, ("id",))
        return _json({"trackers": trackers, "has_more": has_more})

    async def get_tracker(self, request: Request) -> Response:
        rows = self.visible_trackers().filter(pl.col("tracker_id") == request.path_params["tracker_id"])
        if not rows.height:
            return _not_found()
        return _json(self.render(rows)[0])

    async def create_tracker(self, request: Request) -> Response:
        body = await _body(request)
        params = body.get("tracker") if isinstance(body, dict) and isinstance(body.get("tracker"), dict) else body
        if not isinstance(params, dict):
            params = {}
        code = params.get("tracking_code")
        carrier = params.get("carrier")
        if not code or not isinstance(code, str):
            return error_response(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                                  [{"field": "tracking_code", "message": "cannot be blank"}])
        with self._write_lock:
            # the same carrier and code (or the code alone when the carrier is auto-detected)
            same = self.visible_trackers().filter(pl.col("tracking_code") == code)
            if carrier:
                same = same.filter(pl.col("carrier").str.to_lowercase() == str(carrier).lower())
            if same.height:
                return self._created(same.head(1))
            now = self.ctx.now()
            world_rows = tracker_records(self.book.trackers.filter(pl.col("tracking_code") == code).head(1))
            known = world_rows[0] if world_rows else None
            n = self.ctx.store.next_id("easypost_tracker", 0)
            payload = {
                "id": created_id("trk", n),
                "tracking_code": code,
                "carrier": carrier or (known.carrier if known else "USPS"),
                "service": known.service if known else None,
                "created_at": now.isoformat(),
                "est_delivery_at": known.est_delivery_at.isoformat() if known and known.est_delivery_at else None,
                "weight_oz": known.weight_oz if known else None,
                "origin": known.origin if known else None,
                "destination": known.destination if known else None,
            }
            self.ctx.store.put(SOURCE, "tracker", payload["id"], payload, at=now)
        return self._created(self.visible_trackers().filter(pl.col("tracker_id") == payload["id"]))

    def _created(self, rows: pl.DataFrame) -> Response:
        body = self.render(rows)[0]
        return _json(body, 201, {"Location": f"/api/v2/trackers/{body['id']}"})

    # ---- claims
    def visible_claims(self) -> list[dict]:
        now = self.ctx.now()
        claims = [w.payload for w in self.ctx.store.all(SOURCE, "claim")]
        claims = [c for c in claims if datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) <= now]
        claims.sort(key=lambda c: (c["created_at"], c["id"]))
        return claims

    async def list_claims(self, request: Request) -> Response:
        claims = self.visible_claims()
        code = request.query_params.get("tracking_code")
        if code:
            claims = [c for c in claims if c["tracking_code"] == code]
        start, end = _datetime_bounds(request)
        created = [datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) for c in claims]
        claims = [c for c, at in zip(claims, created) if (not start or at >= start) and (not end or at <= end)]
        positions = {c["id"]: i for i, c in enumerate(claims)}
        low, high, has_more = _id_window(request, len(claims), positions.get)
        page = claims[low:high][::-1]
        page = self.ctx.faults[SOURCE].mutate(page, ("id",))
        return _json({"claims": page, "has_more": has_more})

    async def get_claim(self, request: Request) -> Response:
        claim_id = request.path_params["claim_id"]
        for claim in self.visible_claims():
            if claim["id"] == claim_id:
                return _json(claim)
        return _not_found()

    async def create_claim(self, request: Request) -> Response:
        body = await _body(request)
        params = body.get("claim") if isinstance(body, dict) and isinstance(body.get("claim"), dict) else body
        if not isinstance(params, dict):
            params = {}
        missing = [f for f in ("type", "tracking_code", "amount") if params.get(f) in (None, "")]
        if missing:
            return error_response(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                                  [{"field": f, "message": "cannot be blank"} for f in missing])
        errors = []
        if params["type"] not in CLAIM_TYPES:
            errors.append({"field": "type", "message": f"must be one of {', '.join(CLAIM_TYPES)}"})
        try:
            amount = Decimal(str(params["amount"]))
            if amount <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            amount = None
            errors.append({"field": "amount", "message": "must be a positive amount"})
        code = params["tracking_code"]
        if not self.visible_trackers().filter(pl.col("tracking_code") == code).height:
            errors.append({"field": "tracking_code", "message": "no shipment or tracker found for this tracking code"})
        if errors:
            return error_response(422, "PARAMETER.INVALID", "Invalid parameter.", errors)
        with self._write_lock:
            open_claims = [c for c in self.visible_claims() if c["tracking_code"] == code and c["status"] not in ("rejected", "cancelled")]
            if open_claims:
                return error_response(422, "CLAIM.ALREADY_EXISTS",
                                      f"A claim ({open_claims[0]['id']}) already exists for this tracking code.",
                                      [{"field": "tracking_code", "message": "already has an open claim"}])
            now = self.ctx.now()
            n = self.ctx.store.next_id("easypost_claim", 0)
            claim_id = created_id("clm", n)
            stamp = format_instant(now)
            attachments = []
            for name in ("email_evidence_attachments", "invoice_attachments", "supporting_documentation_attachments"):
                values = params.get(name) or []
                attachments += [f"https://easypost-files.s3.amazonaws.com/claims/{claim_id}/{name}/{i}" for i, _ in enumerate(values)]
            claim = {
                "id": claim_id,
                "object": "Claim",
                "mode": self.mode,
                "type": params["type"],
                "tracking_code": code,
                "shipment_id": None,
                "insurance_id": None,
                "insurance_amount": None,
                "requested_amount": f"{amount:.2f}",
                "approved_amount": None,
                "salvage_value": None,
                "description": params.get("description"),
                "contact_email": params.get("contact_email"),
                "recipient_name": params.get("recipient_name"),
                "reference": params.get("reference"),
                "payment_method": params.get("payment_method") or "easypost_wallet",
                "check_delivery_address": params.get("check_delivery_address"),
                "attachments": attachments,
                "status": "submitted",
                "status_detail": "Claim was created.",
                "status_timestamp": stamp,
                "history": [{"status": "submitted", "status_detail": "Claim was created.", "timestamp": stamp}],
                "created_at": stamp,
                "updated_at": stamp,
            }
            self.ctx.store.put(SOURCE, "claim", claim["id"], claim, at=now)
        return _json(claim, 201)


def _instant_or_none(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _basic_username(header: str | None) -> str | None:
    """The API key from ``Authorization: Basic base64(key:)``; None when absent or malformed."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    username = decoded.partition(":")[0]
    return username or None


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise InvalidParameter("page_size", "must be an integer") from None
    if size < 1:
        raise InvalidParameter("page_size", "must be at least 1")
    return min(size, MAX_PAGE_SIZE)


def _datetime_bounds(request: Request) -> tuple[datetime | None, datetime | None]:
    try:
        return (parse_instant_param(request.query_params.get("start_datetime")),
                parse_instant_param(request.query_params.get("end_datetime")))
    except ValueError:
        raise InvalidParameter("start_datetime/end_datetime", "must be an ISO-8601 datetime") from None


def _id_window(request: Request, count: int, position_of) -> tuple[int, int, bool]:
    """Which slice of ``count`` records (oldest first) one page shows: (low, high, has_more).

    ``before_id`` pages towards older records (the usual walk: the last id of a page), ``after_id``
    towards newer ones; either way a page lists newest first.
    """
    size = _page_size(request)
    before_id = request.query_params.get("before_id")
    after_id = request.query_params.get("after_id")
    low, high = 0, count
    if before_id:
        at = position_of(before_id)
        if at is None:
            raise InvalidParameter("before_id", "does not identify a record")
        high = at
    if after_id:
        at = position_of(after_id)
        if at is None:
            raise InvalidParameter("after_id", "does not identify a record")
        low = at + 1
    if high <= low:
        return 0, 0, False
    if after_id and not before_id:
        # walking forwards in time: the records just after after_id
        return low, min(high, low + size), low + size < high
    return max(low, high - size), high, high - size > low


async def _body(request: Request):
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def build(ctx) -> Starlette:
    """The EasyPost emulator app; routes are relative to /easypost."""
    app = EasyPostApp(ctx)
    g = app.guarded
    routes = [
        Route("/v2/trackers", g(app.list_trackers, listing=True), methods=["GET"]),
        Route("/v2/trackers", g(app.create_tracker), methods=["POST"]),
        Route("/v2/trackers/{tracker_id}", g(app.get_tracker), methods=["GET"]),
        Route("/v2/claims", g(app.list_claims, listing=True), methods=["GET"]),
        Route("/v2/claims", g(app.create_claim), methods=["POST"]),
        Route("/v2/claims/{claim_id}", g(app.get_claim), methods=["GET"]),
    ]
    starlette_app = Starlette(routes=routes)
    starlette_app.state.easypost = app
    return starlette_app
