"""EasyPost v2 (carrier tracking): HTTP Basic with the API key, newest-first lists paged by
``before_id`` until ``has_more`` is false, 5 requests a second on list endpoints, trackers
de-duplicated by EasyPost on carrier + tracking code, and claims for lost parcels."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from .ingest import Page, Stream
from .pacing import SlidingWindowPacer, rate_limit_scale
from .records import Field, FieldError, RecordShape, as_instant, dig
from .transport import ApiClient, SourceError

PAGE_SIZE = 100  # EasyPost's largest page
LIST_REQUESTS_PER_SECOND = 5
FINAL_STATUSES = ("delivered", "return_to_sender", "failure", "cancelled", "error")
LOOKBACK = timedelta(days=2)
# How far before the last run the tracker list is re-read at most. Lost parcels never reach a
# final status, so "from the oldest open tracker" would soon mean "everything"; the few trackers
# open for longer than this are refreshed one by one instead (see tracker_stream).
OPEN_HORIZON = timedelta(days=14)
REFRESH_BATCH = 20  # open trackers refreshed one by one, per committed page
CLOSED_CLAIM_STATUSES = ("rejected", "cancelled")


def _require(env, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set (see .env.example)")
    return value


@dataclass(frozen=True)
class EasyPostSettings:
    base_url: str  # e.g. https://api.easypost.com/v2
    api_key: str

    @classmethod
    def from_env(cls, env=os.environ) -> "EasyPostSettings":
        """Settings from EASYPOST_BASE_URL and EASYPOST_API_KEY."""
        return cls(base_url=_require(env, "EASYPOST_BASE_URL"), api_key=_require(env, "EASYPOST_API_KEY"))

    def __repr__(self) -> str:  # never print the key
        return f"EasyPostSettings(base_url={self.base_url!r})"


class EasyPostClient(ApiClient):
    source = "easypost"

    def __init__(self, settings: EasyPostSettings, page_size: int = PAGE_SIZE, **kw):
        scale = rate_limit_scale()
        # the API key is the Basic user name, with an empty password
        super().__init__(settings.base_url, headers={"Accept": "application/json"}, auth=(settings.api_key, ""),
                         pacer=kw.pop("pacer", None) or SlidingWindowPacer(LIST_REQUESTS_PER_SECOND, 1.0 / scale), **kw)
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"easypost: page_size must be 1..{PAGE_SIZE}, got {page_size}")
        self.settings = settings
        self.page_size = page_size

    # ---- reads
    def list_pages(self, resource: str, start: datetime | None, resume: dict | None) -> Iterator[Page]:
        """Every record of a list created at or after ``start`` (all when None), newest first.

        The next page is ``before_id`` = the last id of this page, a stable record id rather than
        an expiring token, so it is also the resume point after a crash.
        """
        before_id = (resume or {}).get("before_id")
        while True:
            params: dict = {"page_size": self.page_size}
            if start is not None:
                params["start_datetime"] = _stamp(start)
            if before_id:
                params["before_id"] = before_id
            try:
                body = self.request("GET", resource, params=params).body or {}
            except SourceError as exc:
                if before_id and resume and exc.status in (400, 404, 422):
                    # the record we were to resume before is gone (deleted): restart the window;
                    # re-reading is harmless, the raw table keeps the latest version by id
                    before_id, resume = None, None
                    continue
                raise
            records = body.get(resource) or []
            more = bool(body.get("has_more")) and bool(records)
            last_id = records[-1].get("id") if records and isinstance(records[-1], dict) else None
            more = more and bool(last_id)
            yield Page(records, {"before_id": last_id} if more else None)
            if not more:
                return
            before_id = last_id

    def get_tracker(self, tracker_id: str) -> dict | None:
        """One tracker by id; None when it no longer exists (deleted)."""
        try:
            return self.request("GET", f"trackers/{tracker_id}").body
        except SourceError as exc:
            if exc.status == 404:
                return None
            raise

    # ---- writes (write-back)
    def create_tracker(self, tracking_code: str, carrier: str | None = None) -> dict:
        """Start tracking a parcel; EasyPost returns the existing tracker for the same carrier and
        code, so the create is safe to retry."""
        tracker = {"tracking_code": tracking_code, **({"carrier": carrier} if carrier else {})}
        return self.request("POST", "trackers", json_body={"tracker": tracker}, idempotent=True).body

    def create_claim(self, claim: dict) -> dict:
        """File a claim (``type`` loss/damage/theft, ``tracking_code``, ``amount``, and optionally
        ``description``, ``recipient_name``, ``contact_email``, ``payment_method``, and the
        ``email_evidence_attachments`` / ``invoice_attachments`` / ``supporting_documentation_attachments``).

        EasyPost has no idempotency key for claims but refuses a second open claim on one
        tracking code (422), so a lost answer is retried and a 422 is answered by finding the
        open claim: a retry never files twice.
        """
        missing = [f for f in ("type", "tracking_code", "amount") if claim.get(f) in (None, "")]
        if missing:
            raise ValueError(f"easypost: a claim needs {', '.join(missing)}")
        try:
            return self.request("POST", "claims", json_body=claim, idempotent=True).body
        except SourceError as exc:
            if exc.status != 422:
                raise
            existing = self.find_open_claim(claim["tracking_code"])
            if existing is None:
                raise
            return existing

    def find_open_claim(self, tracking_code: str) -> dict | None:
        """The claim on this tracking code that is not rejected or cancelled, or None."""
        for page in self.list_pages("claims", None, None):
            for claim in page.records:
                if claim.get("tracking_code") == tracking_code and claim.get("status") not in CLOSED_CLAIM_STATUSES:
                    return claim
        return None


def _stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def needs(read, *keys: str):
    """A field reader that first checks the record carries ``keys`` (null allowed): a record that
    lacks a field closeloop relies on is damaged, and is quarantined naming that field."""
    def checked(record: dict):
        for key in keys:
            if key not in record:
                raise FieldError(f"{key}: missing")
        return read(record) if callable(read) else dig(record, read)
    return checked


def _scan_times(record: dict, statuses: tuple[str, ...] | None = None) -> list[datetime]:
    details = record.get("tracking_details")
    if not isinstance(details, list):
        return []
    return [as_instant(d.get("datetime"), "tracking_details.datetime") for d in details
            if isinstance(d, dict) and d.get("datetime") and (statuses is None or d.get("status") in statuses)]


SHAPES = {
    "trackers": RecordShape(
        key=Field("id", "id", required=True),
        # the scans (tracking_details) stay in the payload; a tracker without them is damaged
        updated_at=Field("updated_at", needs("updated_at", "tracking_details"), "instant", required=True),
        fields=(
            Field("tracking_code", "tracking_code", required=True),
            Field("carrier", "carrier", required=True),
            Field("status", "status", required=True),
            Field("status_detail", "status_detail"),
            Field("created_at", "created_at", "instant", required=True),
            Field("est_delivery_date", "est_delivery_date", "instant"),
            Field("shipment_id", "shipment_id"),
            Field("last_scan_at", lambda r: max(_scan_times(r), default=None), "instant"),
            Field("delivered_at", lambda r: min(_scan_times(r, ("delivered",)), default=None), "instant"),
        )),
}


def _open_trackers(store, created_before: datetime | None = None):
    """(created_at, id) of the trackers the raw table holds as not final, oldest first."""
    if store is None:
        return []
    table = store.table("easypost", "trackers")
    with store.lock:
        exists = store.con.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'easypost__trackers'"
        ).fetchone()[0]
    if not exists:
        return []
    marks = ", ".join("?" for _ in FINAL_STATUSES)
    sql = f"select created_at, id from {table} where status not in ({marks})"
    args: list = list(FINAL_STATUSES)
    if created_before is not None:
        sql += " and created_at < ?"
        args.append(created_before)
    with store.lock:
        return store.con.execute(sql + " order by created_at, id", args).fetchall()


def tracker_stream(client: EasyPostClient, store=None) -> Stream:
    """Trackers, re-read from the oldest one that was still open at the last run.

    Trackers change after creation (new scans) but the list is ordered and filtered by
    creation, so "updated since the last run" cannot be asked for. A tracker that was final
    (delivered, returned, failed, cancelled, error) at the last run does not change again; one
    that was open may. So the incremental read starts at ``start_datetime`` = the creation time
    of the oldest tracker the raw table (the last run's view) holds as not final, minus the
    lookback, and never later than the runner's ``since`` (which covers trackers created since).
    Lost parcels stay open for ever, so the list window reaches back at most
    ``OPEN_HORIZON`` before ``since``; trackers open for longer (few) are refreshed one by one
    with ``GET /trackers/{id}`` after the list. Without the raw store (``store=None``) the window
    is ``since - OPEN_HORIZON`` and there is no one-by-one refresh.

    The window start travels in the resume point, so a resumed run keeps the window it began
    with even though the raw table has moved since.
    """

    def window_start(since: datetime | None) -> datetime | None:
        if since is None:
            return None  # first run: every tracker
        floor = since - OPEN_HORIZON
        if store is None:
            return floor
        open_now = _open_trackers(store)
        start = since if not open_now else min(since, _utc(open_now[0][0]) - LOOKBACK)
        return max(start, floor)

    def read(since: datetime | None, resume: dict | None) -> Iterator[Page]:
        if resume is not None:
            start = as_instant(resume.get("start"), "start")
        else:
            start = window_start(since)
        start_text = start.isoformat() if start else None
        if resume is None or resume.get("phase") != "refresh":
            stragglers = since is not None and bool(_open_trackers(store, start)) if start else False
            for page in client.list_pages("trackers", start, resume):
                if page.resume is not None:
                    yield Page(page.records, {"start": start_text, **page.resume})
                elif stragglers:
                    yield Page(page.records, {"start": start_text, "phase": "refresh", "after": None})
                else:
                    yield page
            if not stragglers:
                return
            resume = {"phase": "refresh", "after": None}
        # trackers open for longer than the list window, oldest first, after the last one done
        after = resume.get("after")
        pending = [(_utc(created), tid) for created, tid in _open_trackers(store, start)]
        if after:
            mark = (as_instant(after[0], "after"), after[1])
            pending = [p for p in pending if p > mark]
        if not pending:
            yield Page([], None)
            return
        for i in range(0, len(pending), REFRESH_BATCH):
            batch = pending[i:i + REFRESH_BATCH]
            records = [t for t in (client.get_tracker(tid) for _, tid in batch) if t is not None]
            done = i + REFRESH_BATCH >= len(pending)
            last = batch[-1]
            yield Page(records, None if done else {"start": start_text, "phase": "refresh",
                                                   "after": [last[0].isoformat(), last[1]]})

    return Stream("easypost", "trackers", SHAPES["trackers"], read, lookback=LOOKBACK,
                  description="EasyPost trackers with their scans")


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def streams(client: EasyPostClient, store=None) -> list[Stream]:
    """The tracker stream; pass the raw store so the incremental window can start at the oldest
    tracker that was still open at the last run (see :func:`tracker_stream`)."""
    return [tracker_stream(client, store)]
