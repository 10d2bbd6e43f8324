"""Ingestion figures: the demo world's backfill and daily run, and how close each connector
runs to its source's rate limit without going over."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import uvicorn

from .report import figure

_RUN = """
import json, os, resource, sys, time
started = time.perf_counter()
from orchestration.daily_run import run_daily
outcome = run_daily(progress=True)
print(json.dumps({'seconds': time.perf_counter() - started, 'success': outcome.success,
                  'failures': outcome.failures,
                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """A private copy of a world served in this process, throttled or not."""

    def __init__(self, world_path: Path, throttle_scale: float | None):
        from connectors.sandbox.emulators.throttle import ThrottleSettings
        from connectors.sandbox.server import build_app
        from connectors.sandbox.world import World

        self.tmp = Path(tempfile.mkdtemp(prefix="closeloop-bench-"))
        private = self.tmp / world_path.name
        shutil.copytree(world_path, private, ignore=shutil.ignore_patterns("writes.sqlite*", "clock.json"))
        self.world = World(private)
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        throttle = ThrottleSettings(enabled=throttle_scale is not None, scale=throttle_scale or 1.0)
        self.app = build_app(self.world, self.base, throttle)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self, data_dir: Path, pace: float) -> dict:
        from connectors.sandbox.credentials import SandboxCredentials
        from connectors.sandbox.server import connector_settings

        return {**os.environ, **connector_settings(self.base, SandboxCredentials(self.world.meta.seed), "xero", pace),
                "CLOSELOOP_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster")}


def daily_run(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["records"] = sum(int(line.split(": ", 1)[1].split(" records")[0].replace(",", ""))
                            for line in out.stderr.splitlines() if " records, " in line and not line.startswith(" "))
    return result


def backfill_and_daily(world_path: Path, label: str, daily: bool = True) -> int:
    missed = 0
    with Sandbox(world_path, None) as sandbox, tempfile.TemporaryDirectory() as data:
        env = sandbox.env(Path(data), pace=1000.0)
        first = daily_run(env)
        if not first["success"]:
            print(f"{label} backfill FAILED: {first['failures']}")
            return 1
        missed += figure(f"{label} backfill", first["seconds"], "s",
                         note=f"{first['records']:,} records, {first['records'] / first['seconds']:,.0f} records/s")
        limit = 1536 if label.startswith("1M") else None
        missed += figure(f"{label} backfill peak memory", first["peak_mb"], "MB", limit)
        if daily:
            sandbox.world.set_clock(sandbox.world.now() + timedelta(days=1))
            second = daily_run(env)
            missed += figure(f"{label} incremental daily run", second["seconds"], "s", 30,
                             note=f"{second['records']:,} records, process start included")
    return missed


RATE_SECONDS = 90.0  # each source is read for this long: the ratio is a steady-state figure


def _read_for(stream, seconds: float) -> None:
    """Consume a stream's pages (as a backfill would) for ``seconds``, then stop reading."""
    started = time.monotonic()
    pages = stream.read(None, None)
    try:
        for _page in pages:
            if time.monotonic() - started > seconds:
                break
    finally:
        pages.close()


def request_rates(world_path: Path, scale: float = 3.0) -> int:
    """Each connector against a throttled sandbox whose limits run ``scale`` times faster.

    The scale is low on purpose: the limit, not how fast this machine turns a page around,
    must be what binds, or the ratio measures the client instead of its pacing.
    """
    import httpx

    from connectors import shipbob, shopify, xero

    missed = 0
    os.environ["CLOSELOOP_RATE_LIMIT_SCALE"] = f"{scale:g}"
    cases = [
        ("xero", "invoices", 60, 60.0, lambda env: xero.XeroClient(xero.XeroSettings.from_env(env))),
        ("shipbob", "orders", 150, 60.0, lambda env: shipbob.ShipBobClient(shipbob.ShipBobSettings.from_env(env))),
    ]
    with Sandbox(world_path, scale) as sandbox, tempfile.TemporaryDirectory() as data:
        env = sandbox.env(Path(data), pace=scale)
        for source, entity, limit, window, make in cases:
            client = make(env)
            stamps: list[float] = []
            # token requests go to the identity endpoint and do not count against the API's limit
            client.http.event_hooks["request"].append(
                lambda request, s=stamps: None if "token" in request.url.path else s.append(time.monotonic()))
            stream = next(s for s in getattr(sys.modules[f"connectors.{source}"], "streams")(client) if s.entity == entity)
            if source == "xero":
                xero.PAGE_SIZE = 100  # more, smaller pages: a longer steady state to measure
            _read_for(stream, RATE_SECONDS)
            if source == "xero":
                xero.PAGE_SIZE = 1000
            client.close()
            w = window / scale
            busiest = max(sum(1 for t in stamps if s <= t < s + w) for s in stamps)
            steady = [t for t in stamps if t >= stamps[0] + w]
            rate = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else 0.0
            ratio = rate / (limit / w)
            missed += figure(f"{source} request rate / limit", ratio, "x", 0.85, at_least=True,
                             note=f"{len(stamps)} requests, busiest window {busiest}/{limit} (never over: "
                                  f"{'yes' if busiest <= limit else 'NO'})")
            missed += 0 if busiest <= limit else 1
        # Shopify: cost points per second against the restore rate, through paginated queries
        client = shopify.ShopifyClient(shopify.ShopifySettings.from_env(env))
        costs: list[tuple[float, float]] = []

        def record(response, c=costs):
            response.read()
            try:
                cost = json.loads(response.content).get("extensions", {}).get("cost", {})
            except ValueError:
                return
            if cost.get("actualQueryCost") is not None:
                c.append((time.monotonic(), float(cost["actualQueryCost"])))
        client.http.event_hooks["response"].append(record)
        stream = next(s for s in shopify.streams(client, bulk_backfill=False) if s.entity == "orders")
        _read_for(stream, RATE_SECONDS)
        client.close()
        status = httpx.post(f"{sandbox.base}/shopify/admin/api/2026-07/graphql.json", json={"query": "{ shop { name } }"},
                            headers={"X-Shopify-Access-Token": env["SHOPIFY_ACCESS_TOKEN"]}).json()
        restore = status["extensions"]["cost"]["throttleStatus"]["restoreRate"]
        bucket = status["extensions"]["cost"]["throttleStatus"]["maximumAvailable"]
        spent = sum(c for _, c in costs) - bucket  # the first bucketful is free; the rest is paced
        duration = costs[-1][0] - costs[0][0] if len(costs) > 1 else 0.0
        ratio = spent / duration / restore if duration > 0 and spent > 0 else 0.0
        missed += figure("shopify cost points per second / restore rate", ratio, "x", 0.85, at_least=True,
                         note=f"{len(costs)} queries, {sum(c for _, c in costs):,.0f} points")
    return missed


def run(quick: bool = False, demo_world: Path | None = None, large_world: Path | None = None) -> int:
    from connectors.sandbox.generator import generate_world

    root = Path(tempfile.mkdtemp(prefix="closeloop-bench-worlds-"))
    try:
        demo = demo_world or generate_world("demo", 7, root)
        missed = backfill_and_daily(demo, "demo world")
        missed += request_rates(demo)
        if not quick:
            large = large_world or generate_world("large", 7, root)
            missed += backfill_and_daily(large, "1M-order world", daily=False)
        return missed
    finally:
        shutil.rmtree(root, ignore_errors=True)
