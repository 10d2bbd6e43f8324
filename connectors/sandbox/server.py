"""One HTTP server on 127.0.0.1 serving every emulator under its own prefix.

=========  ===============================================  ==========================
prefix     speaks                                           real base URL it stands for
=========  ===============================================  ==========================
/shopify   Shopify Admin GraphQL (+ bulk operations)        https://{shop}.myshopify.com
/shipbob   ShipBob API 2026-07                              https://api.shipbob.com
/easypost  EasyPost v2                                      https://api.easypost.com
/xero      Xero Accounting 2.0 and identity token endpoint  https://api.xero.com, https://identity.xero.com
/netsuite  NetSuite REST record, SuiteQL, OAuth2 token      https://{acct}.suitetalk.api.netsuite.com
/amazon    SP-API Orders 2026-01-01, Reports 2021-06-30     https://sellingpartnerapi-na.amazon.com
           and the LWA token endpoint                       https://api.amazon.com
/_sandbox  the sandbox's own controls: status, clock, faults
=========  ===============================================  ==========================
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from .credentials import SandboxCredentials
from .emulators.faults import SOURCES, FaultConfig, FaultMiddleware, SourceFaults
from .emulators.state import WriteStore
from .emulators.throttle import ThrottleSettings
from .world import AMAZON_MARKETPLACE_ID, World

API_VERSIONS = {"shopify": "2026-07", "shipbob": "2026-07"}


@dataclass
class SandboxContext:
    """Everything an emulator needs: the world, its clock, credentials, writes, limits, faults."""

    world: World
    credentials: SandboxCredentials
    store: WriteStore
    throttle: ThrottleSettings
    faults: dict[str, SourceFaults]
    base_url: str
    cache: dict = field(default_factory=dict)
    cache_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        return self.world.now()

    def source_url(self, source: str) -> str:
        return f"{self.base_url}/{source}"

    def cached(self, key: tuple, build):
        """Memoise a derived frame for the current clock (cleared when the clock moves)."""
        stamp = self.now()
        with self.cache_lock:
            hit = self.cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        value = build()
        with self.cache_lock:
            self.cache[key] = (stamp, value)
        return value


def connector_settings(base_url: str, credentials: SandboxCredentials, accounting: str = "xero",
                       rate_limit_scale: float = 1.0) -> dict[str, str]:
    """The KEY=VALUE settings that point closeloop's connectors at this sandbox."""
    c = credentials
    return {
        "ACCOUNTING_SYSTEM": accounting,
        "CLOSELOOP_RATE_LIMIT_SCALE": f"{rate_limit_scale:g}",
        "SANDBOX_URL": base_url,
        "SHOPIFY_SHOP_URL": f"{base_url}/shopify",
        "SHOPIFY_ACCESS_TOKEN": c.shopify_access_token,
        "SHOPIFY_API_VERSION": API_VERSIONS["shopify"],
        "SHIPBOB_BASE_URL": f"{base_url}/shipbob",
        "SHIPBOB_ACCESS_TOKEN": c.shipbob_token,
        "SHIPBOB_CHANNEL_ID": str(c.shipbob_channel_id),
        "SHIPBOB_API_VERSION": API_VERSIONS["shipbob"],
        "EASYPOST_BASE_URL": f"{base_url}/easypost/v2",
        "EASYPOST_API_KEY": c.easypost_api_key,
        "XERO_BASE_URL": f"{base_url}/xero/api.xro/2.0",
        "XERO_TOKEN_URL": f"{base_url}/xero/connect/token",
        "XERO_CLIENT_ID": c.xero_client_id,
        "XERO_CLIENT_SECRET": c.xero_client_secret,
        "XERO_TENANT_ID": c.xero_tenant_id,
        "NETSUITE_BASE_URL": f"{base_url}/netsuite",
        "NETSUITE_TOKEN_URL": f"{base_url}/netsuite/services/rest/auth/oauth2/v1/token",
        "NETSUITE_ACCOUNT_ID": c.netsuite_account_id,
        "NETSUITE_CLIENT_ID": c.netsuite_client_id,
        "NETSUITE_CLIENT_SECRET": c.netsuite_client_secret,
        "AMAZON_SPAPI_BASE_URL": f"{base_url}/amazon",
        "AMAZON_LWA_TOKEN_URL": f"{base_url}/amazon/auth/o2/token",
        "AMAZON_LWA_CLIENT_ID": c.amazon_lwa_client_id,
        "AMAZON_LWA_CLIENT_SECRET": c.amazon_lwa_client_secret,
        "AMAZON_REFRESH_TOKEN": c.amazon_refresh_token,
        "AMAZON_MARKETPLACE_ID": AMAZON_MARKETPLACE_ID,
    }


def _env_value(value: str) -> str:
    """Quote what a shell or dotenv would otherwise split (LWA tokens carry a '|')."""
    if re.fullmatch(r"[A-Za-z0-9_./:@-]*", value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    lines = ["# written by 'closeloop sandbox serve': points the connectors at the local sandbox"]
    lines += [f"{key}={_env_value(value)}" for key, value in settings.items()]
    Path(path).write_text("\n".join(lines) + "\n")


def build_app(
    world: World,
    base_url: str,
    throttle: ThrottleSettings = ThrottleSettings(),
    faults: FaultConfig | None = None,
    sources: tuple[str, ...] = SOURCES,
) -> Starlette:
    faults = faults or FaultConfig.none()
    ctx = SandboxContext(
        world=world,
        credentials=SandboxCredentials(world.meta.seed),
        store=WriteStore(world.writes_db),
        throttle=throttle,
        faults={s: SourceFaults(s, faults) for s in SOURCES},
        base_url=base_url,
    )
    mounts = []
    for source in sources:
        module = importlib.import_module(f"connectors.sandbox.emulators.{source}")
        app = module.build(ctx)
        throttled = module.throttled
        if "time_scale" in inspect.signature(throttled).parameters:
            # a throttle answer that reports rates (Shopify's cost block) reports the scaled ones
            throttled = functools.partial(throttled, time_scale=throttle.scale)
        wrapped = FaultMiddleware(app, ctx.faults[source], throttled, module.server_error, time_scale=throttle.scale)
        mounts.append(Mount(f"/{source}", app=wrapped))
    mounts.append(Mount("/_sandbox", routes=_control_routes(ctx)))
    app = Starlette(routes=mounts)
    app.state.ctx = ctx
    return app


def _control_routes(ctx: SandboxContext) -> list[Route]:
    async def status(request: Request):
        meta = ctx.world.meta
        return JSONResponse(
            {
                "scale": meta.scale,
                "seed": meta.seed,
                "now": ctx.now().isoformat(),
                "start": meta.start.isoformat(),
                "end": meta.end.isoformat(),
                "counts": meta.counts,
                "faults_injected": {s: dict(f.injected) for s, f in ctx.faults.items()},
            }
        )

    async def clock(request: Request):
        body = json.loads(await request.body() or b"{}")
        if "advance_days" in body:
            target = ctx.now() + timedelta(days=float(body["advance_days"]))
        elif "now" in body:
            target = datetime.fromisoformat(body["now"])
        else:
            return JSONResponse({"error": "send {'advance_days': N} or {'now': ISO-8601}"}, status_code=400)
        return JSONResponse({"now": ctx.world.set_clock(target).isoformat()})

    async def set_faults(request: Request):
        try:
            config = FaultConfig.from_mapping(json.loads(await request.body() or b"{}"), origin="PUT /_sandbox/faults")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for source_faults in ctx.faults.values():
            source_faults.reconfigure(config)
        return JSONResponse({"ok": True})

    return [
        Route("/status", status, methods=["GET"]),
        Route("/clock", clock, methods=["POST"]),
        Route("/faults", set_faults, methods=["PUT"]),
    ]
