"""The HTTP layer every connector shares: one httpx client per source, retries on purpose.

What is retried, and why:
- 429: the source asked us to slow down; wait what it says (``Retry-After`` and friends).
- 500, 502, 503, 504: the source failed, not our request; the same request may succeed.
- timeouts, dropped connections, and a 200 whose JSON body is cut short: the transport lost
  the answer, not the source.
A 4xx other than 429 is our mistake or the data's and is never retried: it raises
:class:`SourceError` naming the source, the request and the response. Writes are retried only
when the caller marks them idempotent (an idempotency key or an upsert by external id), so a
lost answer never turns into a duplicate record.
"""
from __future__ import annotations

import email.utils
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from .pacing import Pacer

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
SECRET_HEADERS = frozenset({"authorization", "x-shopify-access-token", "x-amz-access-token", "xero-tenant-id"})


class SourceError(RuntimeError):
    """A request a source refused or that kept failing; the message says which and why."""

    def __init__(self, source: str, method: str, url: str, status: int | None, detail: str, retryable: bool = False):
        self.source, self.method, self.url, self.status, self.detail, self.retryable = source, method, url, status, detail, retryable
        where = f"{method} {url}"
        what = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{source}: {where} failed: {what}: {detail}")


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(0x5EED))

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many clients apart."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return self.rng.uniform(0, ceiling)


@dataclass
class ApiResponse:
    status: int
    headers: httpx.Headers
    body: Any  # parsed JSON, or bytes when the caller asked for raw content
    url: str


def default_timeout() -> float:
    """Seconds to wait for an answer (``CLOSELOOP_HTTP_TIMEOUT``, default 30)."""
    raw = os.environ.get("CLOSELOOP_HTTP_TIMEOUT", "30")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"CLOSELOOP_HTTP_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"CLOSELOOP_HTTP_TIMEOUT must be positive, got {raw!r}")
    return value


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """What the source asked us to wait: Retry-After (seconds or HTTP date), ShipBob's x-retry-after."""
    for name in ("retry-after", "x-retry-after"):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return None


def redact_url(url: str) -> str:
    """URLs are logged and raised; strip query values that could carry credentials."""
    return str(httpx.URL(url).copy_with(query=None)) if "token" in url.lower() or "key" in url.lower() else url


class ApiClient:
    """One source's HTTP client: base URL, auth, timeouts, pacing and retries set once."""

    source = "source"

    def __init__(self, base_url: str, *, headers: dict | None = None, auth: httpx.Auth | tuple | None = None,
                 timeout: float | None = None, pacer: Pacer | None = None, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.source}: base URL must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        timeout = timeout if timeout is not None else default_timeout()
        self.http = httpx.Client(base_url=self.base_url, headers=headers or {}, auth=auth,
                                 timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), transport=transport)
        self.pacer = pacer or Pacer()
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.stats = {"requests": 0, "retries": 0, "throttled": 0}

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- hooks a connector may override
    def auth_headers(self) -> dict:
        """Headers carrying credentials that can change (refreshed tokens)."""
        return {}

    def on_unauthorized(self) -> bool:
        """A 401 arrived: refresh credentials and return True to try once more."""
        return False

    def throttle_wait(self, response: httpx.Response, body: Any) -> float | None:
        """Seconds to wait when a 200 says 'throttled' (GraphQL sources); None when it does not."""
        return None

    # ---- the request loop
    def request(self, method: str, path: str, *, params=None, json_body=None, data=None, headers: dict | None = None,
                cost: float = 1.0, expect: str = "json", idempotent: bool | None = None,
                auth: httpx.Auth | tuple | None = None, authenticated: bool = True, paced: bool = True) -> ApiResponse:
        """Send one request with pacing and bounded retries; return the parsed answer.

        Token endpoints call this with ``authenticated=False`` (no bearer header), their own
        ``auth`` and ``paced=False`` (they do not count against the API's limit), so they get
        the same retries as everything else.
        """
        idempotent = method.upper() in ("GET", "HEAD", "OPTIONS") if idempotent is None else idempotent
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"
        refreshed = False
        last_error: SourceError | None = None
        for attempt in range(self.policy.max_attempts):
            if paced:
                self.pacer.acquire(cost)
            self.stats["requests"] += 1
            try:
                response = self.http.request(method, url, params=params, json=json_body, data=data,
                                             headers={**(self.auth_headers() if authenticated else {}), **(headers or {})},
                                             **({"auth": auth} if auth is not None else {}))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = SourceError(self.source, method, redact_url(url), None, f"{type(exc).__name__}: {exc}", retryable=True)
                if not idempotent:
                    raise last_error from exc
                self._wait(attempt, None)
                continue
            body: Any = None
            if expect == "json" and response.content:
                try:
                    body = response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    if response.status_code < 400:
                        last_error = SourceError(self.source, method, redact_url(url), response.status_code,
                                                 f"body is not valid JSON ({len(response.content)} bytes; truncated?)", retryable=True)
                        self._wait(attempt, None)
                        continue
                    body = response.text[:500]
            elif expect != "json":
                body = response.content
            self.pacer.observe(response.headers, body)
            if response.status_code == 401 and authenticated and not refreshed and self.on_unauthorized():
                refreshed = True
                continue
            if response.status_code in RETRYABLE_STATUS:
                self.stats["throttled" if response.status_code == 429 else "retries"] += 1
                last_error = SourceError(self.source, method, redact_url(url), response.status_code, _excerpt(body), retryable=True)
                if not idempotent and response.status_code != 429:
                    raise last_error
                self._wait(attempt, retry_after_seconds(response.headers))
                continue
            if response.status_code >= 400:
                raise SourceError(self.source, method, redact_url(url), response.status_code, _excerpt(body))
            wait = self.throttle_wait(response, body)
            if wait is not None:
                self.stats["throttled"] += 1
                last_error = SourceError(self.source, method, redact_url(url), response.status_code, "throttled", retryable=True)
                self._wait(attempt, wait)
                continue
            return ApiResponse(response.status_code, response.headers, body, str(response.url))
        assert last_error is not None
        raise SourceError(last_error.source, last_error.method, last_error.url, last_error.status,
                          f"gave up after {self.policy.max_attempts} attempts: {last_error.detail}", retryable=True)

    def _wait(self, attempt: int, asked: float | None) -> None:
        self.stats["retries"] += 1
        delay = self.policy.backoff(attempt)
        if asked is not None:
            delay = max(asked, delay * 0.25 + asked)
        self.sleep(delay)


def _excerpt(body: Any) -> str:
    """The start of a response body for an error message, whatever its type."""
    if body is None:
        return "(empty body)"
    if isinstance(body, (bytes, bytearray)):
        return bytes(body[:500]).decode("utf-8", "replace")
    if isinstance(body, str):
        return body[:500]
    return json.dumps(body, default=str)[:500]
