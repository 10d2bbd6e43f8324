"""Rate limiters shaped like each source's own: leaky buckets, sliding windows, token buckets.

Every limiter takes a ``scale``: time runs ``scale`` times faster for it, so a test can
exercise Xero's 60-per-minute limit in a second with scale 60. With ``enabled=False`` a
limiter always admits (throughput benchmarks), but still reports its numbers in headers.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleSettings:
    enabled: bool = True
    scale: float = 1.0

    def __post_init__(self):
        if self.scale <= 0:
            raise ValueError(f"throttle scale must be positive, got {self.scale}")


class LeakyBucket:
    """A bucket of ``capacity`` that drains ``leak_per_second``; each request pours ``cost`` in.

    Shopify REST (40 / 2 per second) and Shopify GraphQL cost points (2000 / 100 per second)
    both work this way.
    """

    def __init__(self, capacity: float, leak_per_second: float, settings: ThrottleSettings):
        self.capacity = capacity
        self.leak = leak_per_second * settings.scale
        self.enabled = settings.enabled
        self.level = 0.0
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def _drain(self) -> None:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.stamp) * self.leak)
        self.stamp = now

    def try_pour(self, cost: float) -> tuple[bool, float]:
        """Admit ``cost`` if it fits: (admitted, seconds until it would fit)."""
        with self.lock:
            self._drain()
            if not self.enabled or self.level + cost <= self.capacity:
                self.level = min(self.capacity, self.level + cost) if self.enabled else self.level
                return True, 0.0
            return False, (self.level + cost - self.capacity) / self.leak

    def refund(self, amount: float) -> None:
        with self.lock:
            self.level = max(0.0, self.level - amount)

    def available(self) -> float:
        with self.lock:
            self._drain()
            return self.capacity - self.level

    def used(self) -> int:
        with self.lock:
            self._drain()
            return int(round(self.level))

    @property
    def restore_rate(self) -> float:
        return self.leak


class SlidingWindow:
    """At most ``limit`` requests in any ``window_seconds`` (ShipBob 150/min, Xero 60/min)."""

    def __init__(self, limit: int, window_seconds: float, settings: ThrottleSettings):
        self.limit = limit
        self.window = window_seconds / settings.scale
        self.enabled = settings.enabled
        self.hits: deque[float] = deque()
        self.lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()

    def try_hit(self) -> tuple[bool, float]:
        """Count a request if the window has room: (admitted, seconds until room)."""
        with self.lock:
            now = time.monotonic()
            self._expire(now)
            if not self.enabled or len(self.hits) < self.limit:
                if self.enabled:
                    self.hits.append(now)
                return True, 0.0
            return False, self.hits[0] + self.window - now

    def remaining(self) -> int:
        with self.lock:
            self._expire(time.monotonic())
            return max(0, self.limit - len(self.hits))


class TokenBucket:
    """SP-API style: ``burst`` tokens, refilled at ``rate`` per second; a request takes one."""

    def __init__(self, rate: float, burst: int, settings: ThrottleSettings):
        self.rate = rate * settings.scale
        self.nominal_rate = rate
        self.burst = burst
        self.enabled = settings.enabled
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def try_take(self) -> tuple[bool, float]:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if not self.enabled:
                return True, 0.0
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True, 0.0
            return False, (1.0 - self.tokens) / self.rate


class ConcurrencyGate:
    """At most ``limit`` requests in progress at once (Xero 5 per tenant, NetSuite per account)."""

    def __init__(self, limit: int, settings: ThrottleSettings):
        self.limit = limit
        self.enabled = settings.enabled
        self.active = 0
        self.lock = threading.Lock()

    def enter(self) -> bool:
        with self.lock:
            if self.enabled and self.active >= self.limit:
                return False
            self.active += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
