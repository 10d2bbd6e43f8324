"""Client-side pacing: stay under each source's limit instead of bouncing off it.

Every pacer is built from the limit the source documents, multiplied by the rate-limit scale
(``CLOSELOOP_RATE_LIMIT_SCALE``, 1 against real services; the sandbox writes its own scale
into the env file when it runs its limits faster). 429s still happen (other clients share the
limit, clocks drift) and are handled by the transport's retries; pacing keeps them rare.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Callable

Sleep = Callable[[float], None]


def rate_limit_scale() -> float:
    raw = os.environ.get("CLOSELOOP_RATE_LIMIT_SCALE", "1")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"CLOSELOOP_RATE_LIMIT_SCALE must be a positive number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"CLOSELOOP_RATE_LIMIT_SCALE must be a positive number, got {raw!r}")
    return value


class Pacer:
    """Admits requests; the base class never waits."""

    def acquire(self, cost: float = 1.0) -> None:
        """Block until a request of ``cost`` may be sent."""

    def observe(self, headers, body=None) -> None:
        """Learn from a response's rate-limit signals."""


class SlidingWindowPacer(Pacer):
    """At most ``limit`` requests in any ``window`` seconds (ShipBob, Xero, EasyPost).

    A small margin on the window absorbs the difference between when we send and when the
    server counts.
    """

    def __init__(self, limit: int, window_seconds: float, sleep: Sleep = time.sleep, margin: float = 0.03):
        self.limit = limit
        self.window = window_seconds * (1.0 + margin)
        self.sent: deque[float] = deque()
        self.sleep = sleep
        self.lock = threading.Lock()
        self.paused_until = 0.0

    def acquire(self, cost: float = 1.0) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and self.sent[0] <= now - self.window:
                    self.sent.popleft()
                wait = max(self.paused_until - now, 0.0)
                if not wait and len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                if not wait:
                    wait = self.sent[0] + self.window - now
            self.sleep(max(wait, 0.001))

    def pause(self, seconds: float) -> None:
        """The server said to wait (remaining calls 0): hold every request for that long."""
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)


class TokenBucketPacer(Pacer):
    """SP-API: ``burst`` tokens refilled at ``rate`` per second; ``x-amzn-RateLimit-Limit`` updates the rate."""

    def __init__(self, rate: float, burst: int, scale: float = 1.0, sleep: Sleep = time.sleep):
        self.scale = scale
        self.rate = rate * scale
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.sleep = sleep
        self.lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= cost:
                    self.tokens -= cost
                    return
                wait = (cost - self.tokens) / self.rate
            self.sleep(wait)

    def observe(self, headers, body=None) -> None:
        value = headers.get("x-amzn-ratelimit-limit")
        if value:
            try:
                rate = float(value)
            except ValueError:
                return
            if rate > 0:
                with self.lock:
                    self.rate = rate * self.scale


class CostPacer(Pacer):
    """Shopify GraphQL: a bucket of cost points; each response says how full it is."""

    def __init__(self, maximum: float = 1000.0, restore_rate: float = 50.0, sleep: Sleep = time.sleep):
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.available = maximum
        self.stamp = time.monotonic()
        self.sleep = sleep
        self.lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> None:
        with self.lock:
            now = time.monotonic()
            self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
            self.stamp = now
            wait = 0.0 if self.available >= cost else (cost - self.available) / self.restore_rate
            self.available -= cost
        if wait > 0:
            self.sleep(wait)

    def observe(self, headers, body=None) -> None:
        if not isinstance(body, dict):
            return
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus")
        if not status:
            return
        with self.lock:
            self.maximum = float(status.get("maximumAvailable", self.maximum))
            self.restore_rate = float(status.get("restoreRate", self.restore_rate)) or self.restore_rate
            self.available = float(status.get("currentlyAvailable", self.available))
            self.stamp = time.monotonic()
