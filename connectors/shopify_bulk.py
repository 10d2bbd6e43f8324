"""Shopify bulk query operations: start one, wait for it, stream its JSONL result as whole records.

How a bulk backfill runs (Admin GraphQL, ``bulkOperationRunQuery``):

1. Start the query. Only one bulk query may run per shop and app; when another one is running
   the mutation answers ``OPERATION_IN_PROGRESS``. If the running one is the very same query (our
   own start whose answer was lost on the way back) it is adopted; otherwise we wait for it to
   finish and start ours.
2. Poll ``node(id:)`` until the status is terminal. COMPLETED gives a ``url``; FAILED, CANCELED and
   EXPIRED raise :class:`SourceError`.
3. Download the JSONL with a plain GET (the url is pre-signed: no Shopify headers), line by line.
   Each line is one object; objects of a nested connection carry ``__parentId`` and follow their
   parent, so a parent is complete when the next parent starts. Memory holds one page of parents.

Resuming: the result url stays valid for 7 days, so a page's ``resume`` is the operation id and
how many parents were already handed out; a restarted run downloads the same file again and skips
them. When the url is gone (expired operation, or the file answers 404/403/410) a new bulk run
starts and the stream is read again from its first record (the raw store's upsert makes the
repeat harmless).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import httpx

from .ingest import Page
from .pacing import rate_limit_scale
from .shopify_queries import BULK_CURRENT, BULK_NODE, BULK_RUN
from .transport import SourceError

if TYPE_CHECKING:  # pragma: no cover
    from .shopify import ShopifyClient

FAILED_STATES = ("FAILED", "CANCELED", "EXPIRED")
RUNNING_STATES = ("CREATED", "RUNNING", "CANCELING")
GONE_STATUSES = (403, 404, 410)  # an expired pre-signed url answers one of these
DOWNLOAD_ATTEMPTS = 5


class BulkResultGone(Exception):
    """The operation's result file can no longer be downloaded (expired or removed)."""


@dataclass(frozen=True)
class BulkQuery:
    """A bulk query and where its child lines go: GID type of a child -> connection key on its parent."""

    query: str
    children: dict[str, str] = field(default_factory=dict)


def gid_type(value: str | None) -> str:
    """``gid://shopify/LineItem/12`` -> ``LineItem``."""
    parts = (value or "").split("?")[0].split("/")
    return parts[-2] if len(parts) >= 2 else ""


class BulkOperations:
    """Bulk query operations of one shop, through the connector's GraphQL client."""

    def __init__(self, client: "ShopifyClient", sleep: Callable[[float], None] = time.sleep,
                 first_poll: float = 1.0, max_poll: float = 15.0, max_wait: float = 6 * 3600.0):
        scale = rate_limit_scale()
        self.client = client
        self.sleep = sleep
        # polling costs 1 point; the interval ramps up so a long run is not polled needlessly
        self.first_poll = first_poll / scale
        self.max_poll = max_poll / scale
        self.max_wait = max_wait

    # ---- start and wait
    def start(self, query: str) -> dict:
        """Start ``query`` as a bulk operation (waiting out another one already running)."""
        waited = 0.0
        while True:
            payload = self.client.graphql(BULK_RUN, {"query": query})["bulkOperationRunQuery"] or {}
            errors = payload.get("userErrors") or []
            operation = payload.get("bulkOperation")
            if operation and not errors:
                return operation
            if not any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
                raise self._error("bulkOperationRunQuery refused: " + "; ".join(e.get("message", "") for e in errors))
            current = self.client.graphql(BULK_CURRENT)["currentBulkOperation"]
            if current and current.get("status") in RUNNING_STATES and _same_query(current.get("query"), query):
                return current  # our own start whose answer was lost: adopt it
            if current and current.get("status") in RUNNING_STATES:
                self.wait(current["id"], fail=False)
            else:
                delay = self.first_poll
                self.sleep(delay)
                waited += delay
                if waited > self.max_wait:
                    raise self._error("another bulk operation kept the shop busy")

    def get(self, operation_id: str) -> dict | None:
        """The operation as Shopify reports it now (None when it does not exist)."""
        return self.client.graphql(BULK_NODE, {"id": operation_id})["node"]

    def wait(self, operation_id: str, fail: bool = True) -> dict:
        """Poll until the operation is terminal; raise on FAILED/CANCELED/EXPIRED when ``fail``."""
        delay, waited = self.first_poll, 0.0
        while True:
            operation = self.get(operation_id)
            if operation is None:
                raise self._error(f"bulk operation {operation_id} does not exist")
            status = operation.get("status")
            if status == "COMPLETED":
                return operation
            if status in FAILED_STATES:
                if fail:
                    raise self._error(f"bulk operation {operation_id} ended {status} (errorCode {operation.get('errorCode')})")
                return operation
            if waited > self.max_wait:
                raise self._error(f"bulk operation {operation_id} still {status} after {self.max_wait:.0f}s")
            self.sleep(delay)
            waited += delay
            delay = min(self.max_poll, delay * 1.5)

    # ---- the result file
    def records(self, url: str, children: dict[str, str], skip: int = 0) -> Iterator[dict]:
        """Complete parent records from the JSONL at ``url``, the first ``skip`` parents left out.

        A download that breaks off is started again and the parents already handed out are
        skipped, so the caller sees each parent once.
        """
        handed_out = skip
        for attempt in range(DOWNLOAD_ATTEMPTS):
            index = 0
            try:
                for record in self._parse(url, children):
                    index += 1
                    if index <= handed_out:
                        continue
                    handed_out = index
                    yield record
                return
            except (httpx.TransportError, ValueError) as exc:
                if attempt == DOWNLOAD_ATTEMPTS - 1:
                    raise SourceError(self.client.source, "GET", signed_url_without_query(url), None,
                                      f"bulk result download kept failing: {type(exc).__name__}: {exc}", retryable=True) from exc
                self.sleep(min(30.0, 0.5 * 2 ** attempt))

    def _parse(self, url: str, children: dict[str, str]) -> Iterator[dict]:
        parent: dict | None = None
        # a plain client: the url is pre-signed and must not receive the shop's access token
        with httpx.Client(timeout=self.client.http.timeout, transport=self.client.download_transport) as plain:
            with plain.stream("GET", url) as response:
                if response.status_code in GONE_STATUSES:
                    raise BulkResultGone(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise httpx.TransportError(f"bulk result answered HTTP {response.status_code}")
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    row = json.loads(line)  # a line cut short raises ValueError: download again
                    parent_id = row.pop("__parentId", None)
                    if parent_id is None:
                        if parent is not None:
                            yield parent
                        parent = row
                        for key in children.values():
                            parent.setdefault(key, {"nodes": []})
                        continue
                    if parent is None or parent.get("id") != parent_id:
                        raise self._error(f"bulk line {row.get('id')} does not follow its parent {parent_id}")
                    key = children.get(gid_type(row.get("id")))
                    if key is None:
                        raise self._error(f"bulk line {row.get('id')}: no place for a {gid_type(row.get('id'))} under its parent")
                    parent[key]["nodes"].append(row)
        if parent is not None:
            yield parent

    # ---- a stream read through a bulk operation
    def pages(self, bulk: BulkQuery, resume: dict | None, page_size: int,
              finish: Callable[[list[dict]], list[dict]] = lambda batch: batch) -> Iterator[Page]:
        """Pages of complete records of one bulk query, resumable by operation id and position."""
        operation_id = (resume or {}).get("bulk_id")
        done = int((resume or {}).get("parents_done") or 0)
        restarts = 0
        while True:
            operation = None
            if operation_id:
                operation = self.get(operation_id)
                if operation is None or operation.get("status") in FAILED_STATES:
                    operation, done = None, 0  # gone or expired: start over with a new run
            if operation is None:
                operation, done = self.start(bulk.query), 0
            operation = self.wait(operation["id"])
            operation_id = operation["id"]
            total = _as_int(operation.get("rootObjectCount"))
            url = operation.get("url")
            if not url:
                if _as_int(operation.get("objectCount")) not in (0, None):
                    raise self._error(f"bulk operation {operation_id} completed with objects but no url")
                yield Page([], None, total)  # a completed run with no object has no file
                return
            batch: list[dict] = []
            try:
                for record in self.records(url, bulk.children, skip=done):
                    batch.append(record)
                    if len(batch) >= page_size:
                        done += len(batch)
                        yield Page(finish(batch), {"bulk_id": operation_id, "parents_done": done}, total)
                        batch = []
            except BulkResultGone:
                if restarts >= 2:
                    raise self._error(f"the result of bulk operation {operation_id} cannot be downloaded")
                restarts += 1
                operation_id, done = None, 0
                continue
            yield Page(finish(batch), None, total)
            return

    def _error(self, detail: str) -> SourceError:
        return SourceError(self.client.source, "POST", self.client.graphql_url, 200, detail)


def signed_url_without_query(url: str) -> str:
    """A result url for messages: its query string is a signature, as good as a credential."""
    return str(httpx.URL(url).copy_with(query=None))


def _same_query(a: str | None, b: str) -> bool:
    return " ".join((a or "").split()) == " ".join(b.split())


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
