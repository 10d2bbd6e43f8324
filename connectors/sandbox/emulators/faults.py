"""Fault injection per source, from configuration.

A faults file (YAML or JSON) maps a source name to its fault shares, with ``default`` for
every source not named::

    seed: 11
    default: {rate_429: 0.2, rate_5xx: 0.05}
    xero: {rate_timeout: 0.02, timeout_seconds: 20}

Response faults are applied by :class:`FaultMiddleware` around each source's app; record
faults (repeats, unknown or missing fields) by the emulators through :meth:`SourceFaults.mutate`
because only they know where the records sit in the body. The draw is a seeded random stream
per source, so a test that replays the same requests meets the same faults.
"""
from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Awaitable, Callable

import yaml
from starlette.requests import Request
from starlette.responses import Response

SOURCES = ("shopify", "shipbob", "easypost", "xero", "netsuite", "amazon")


@dataclass(frozen=True)
class FaultShares:
    rate_429: float = 0.0  # answered with the source's own throttle signal
    rate_5xx: float = 0.0  # 500, 502 or 503 with a source-style body
    rate_slow: float = 0.0  # answered after slow_seconds
    slow_seconds: float = 2.0
    rate_timeout: float = 0.0  # handled (writes are applied), then held for timeout_seconds
    timeout_seconds: float = 30.0
    rate_truncate: float = 0.0  # 200 whose body is cut short (invalid JSON)
    rate_reset: float = 0.0  # connection closed before any response
    rate_repeat: float = 0.0  # a record of the page repeated (duplicates across pages)
    rate_extra_field: float = 0.0  # a record carries a field the docs do not list
    rate_missing_field: float = 0.0  # a record lacks a non-key field
    retry_after_seconds: float = 1.0  # what injected 429s ask the client to wait

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"fault setting {f.name} must be a number >= 0, got {value!r}")
            if f.name.startswith("rate_") and value > 1:
                raise ValueError(f"fault setting {f.name} is a share and must be <= 1, got {value}")

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name.startswith("rate_"))


@dataclass
class FaultConfig:
    seed: int = 0
    per_source: dict[str, FaultShares] = field(default_factory=dict)

    @classmethod
    def none(cls) -> "FaultConfig":
        return cls()

    @classmethod
    def from_mapping(cls, raw: dict, origin: str = "faults") -> "FaultConfig":
        if not isinstance(raw, dict):
            raise ValueError(f"{origin}: expected a mapping of source -> fault shares")
        seed = raw.get("seed", 0)
        if not isinstance(seed, int):
            raise ValueError(f"{origin}: seed must be an integer, got {seed!r}")
        default = raw.get("default", {}) or {}
        per_source: dict[str, FaultShares] = {}
        unknown = set(raw) - set(SOURCES) - {"seed", "default"}
        if unknown:
            raise ValueError(f"{origin}: unknown source(s) {sorted(unknown)}; expected one of {list(SOURCES)}")
        known = {f.name for f in fields(FaultShares)}
        for source in SOURCES:
            merged = {**default, **(raw.get(source) or {})}
            bad = set(merged) - known
            if bad:
                raise ValueError(f"{origin}: {source}: unknown fault setting(s) {sorted(bad)}")
            try:
                per_source[source] = FaultShares(**merged)
            except ValueError as exc:
                raise ValueError(f"{origin}: {source}: {exc}") from None
        return cls(seed=seed, per_source=per_source)

    @classmethod
    def load(cls, path: Path) -> "FaultConfig":
        text = Path(path).read_text()
        raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.from_mapping(raw or {}, origin=str(path))

    def shares(self, source: str) -> FaultShares:
        return self.per_source.get(source, FaultShares())


class SourceFaults:
    """The live fault stream of one source: its shares, its random draw and a tally."""

    def __init__(self, source: str, config: FaultConfig):
        self.source = source
        self.config = config
        self.rng = random.Random(f"{config.seed}:{source}")
        self.lock = threading.Lock()
        self.injected: dict[str, int] = {}

    @property
    def shares(self) -> FaultShares:
        return self.config.shares(self.source)

    def reconfigure(self, config: FaultConfig) -> None:
        with self.lock:
            self.config = config
            self.rng = random.Random(f"{config.seed}:{self.source}")

    def draw(self, share: float) -> bool:
        if share <= 0:
            return False
        with self.lock:
            return self.rng.random() < share

    def count(self, kind: str) -> None:
        with self.lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1

    def mutate(self, records: list[dict], key_fields: tuple[str, ...] = ("id",)) -> list[dict]:
        """Apply record faults to one page of records (already rendered as the API's dicts)."""
        shares = self.shares
        if not records or not (shares.rate_repeat or shares.rate_extra_field or shares.rate_missing_field):
            return records
        out = [dict(r) for r in records]
        if self.draw(shares.rate_repeat):
            with self.lock:
                idx = self.rng.randrange(len(out))
            out.insert(idx, dict(out[idx]))
            self.count("repeat")
        for record in out:
            if self.draw(shares.rate_extra_field):
                record["sandbox_undocumented_field"] = "injected"
                self.count("extra_field")
            if self.draw(shares.rate_missing_field):
                candidates = [k for k in record if k not in key_fields]
                if candidates:
                    with self.lock:
                        victim = self.rng.choice(sorted(candidates))
                    del record[victim]
                    self.count("missing_field")
        return out


ThrottleResponder = Callable[[float], Response]
ErrorResponder = Callable[[int], Response]


class FaultMiddleware:
    """ASGI middleware that injects response faults into one source's app."""

    def __init__(self, app, faults: SourceFaults, throttled: ThrottleResponder, server_error: ErrorResponder,
                 time_scale: float = 1.0):
        self.app = app
        # injected 429s ask for a wait on the same compressed clock as the real limits
        self.time_scale = time_scale
        self.faults = faults
        self.throttled = throttled
        self.server_error = server_error

    async def __call__(self, scope, receive, send):
        # downloads of bulk results stand for a CDN, not the API: no API faults there
        if scope["type"] != "http" or "/_sandbox/" in scope["path"] or not self.faults.shares.any:
            await self.app(scope, receive, send)
            return
        shares = self.faults.shares
        f = self.faults
        if f.draw(shares.rate_reset):
            f.count("reset")
            # promise a body, send a byte of it, then drop the connection: what a reset looks like to a client
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise ConnectionResetError("sandbox fault: connection reset")
        if f.draw(shares.rate_429):
            f.count("429")
            await self.throttled(shares.retry_after_seconds / self.time_scale)(scope, receive, send)
            return
        if f.draw(shares.rate_5xx):
            f.count("5xx")
            with f.lock:
                status = f.rng.choice((500, 502, 503))
            await self.server_error(status)(scope, receive, send)
            return
        if f.draw(shares.rate_slow):
            f.count("slow")
            await asyncio.sleep(shares.slow_seconds)
        hold = f.draw(shares.rate_timeout)
        truncate = f.draw(shares.rate_truncate)
        if not hold and not truncate:
            await self.app(scope, receive, send)
            return
        captured = await _capture(self.app, scope, receive)
        if hold:
            # the request was handled (a write is applied) but the answer comes too late
            f.count("timeout")
            await asyncio.sleep(shares.timeout_seconds)
        body = captured.body
        if truncate and len(body) > 2:
            f.count("truncate")
            with f.lock:
                cut = f.rng.randrange(1, len(body) - 1)
            body = body[:cut]
        headers = [(k, v) for k, v in captured.headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": captured.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class _Captured:
    status: int = 200
    headers: list = field(default_factory=list)
    body: bytes = b""


async def _capture(app, scope, receive) -> _Captured:
    out = _Captured()
    chunks: list[bytes] = []

    async def send(message):
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    out.body = b"".join(chunks)
    return out


def json_error(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def request_json(request: Request) -> dict | list | None:
    raw = await request.body()
    if not raw:
        return None
    return json.loads(raw)


Handler = Callable[[Request], Awaitable[Response]]
