"""Emulator throughput: list pages per second for each API on the demo world, throttling off."""
from __future__ import annotations

import base64
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

SECONDS_PER_SOURCE = 8.0
MAX_PAGES = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(world_path: Path):
    from connectors.sandbox.emulators.throttle import ThrottleSettings
    from connectors.sandbox.server import build_app
    from connectors.sandbox.world import World

    private = Path(tempfile.mkdtemp(prefix="closeloop-bench-world-")) / world_path.name
    shutil.copytree(world_path, private, ignore=shutil.ignore_patterns("writes.sqlite*", "clock.json"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(World(private), base, ThrottleSettings(enabled=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return base, server, thread, private.parent


def _walk(next_page) -> tuple[float, int]:
    """Call ``next_page`` until it returns None or the time is up: (pages per second, records per page)."""
    next_page(warmup=True)  # the first page after start builds the clock's frames
    pages = records = 0
    started = time.perf_counter()
    while pages < MAX_PAGES and time.perf_counter() - started < SECONDS_PER_SOURCE:
        got = next_page()
        if got is None:
            break
        pages += 1
        records += got
    elapsed = time.perf_counter() - started
    return pages / elapsed if elapsed else 0.0, records // max(pages, 1)


def throughput(world_path: Path) -> list[tuple[str, float, int]]:
    from connectors.sandbox.credentials import SandboxCredentials
    from connectors.sandbox.world import World

    seed = World(world_path).meta.seed
    creds = SandboxCredentials(seed)
    base, server, thread, tmp = _serve(world_path)
    results = []
    http = httpx.Client(timeout=60)
    try:
        # Shopify GraphQL: orders with their line items
        query = ("query($after: String) { orders(first: 100, after: $after, sortKey: UPDATED_AT) { "
                 "nodes { id name updatedAt lineItems(first: 5) { nodes { sku quantity } } } pageInfo { hasNextPage endCursor } } }")
        state = {"after": None}

        def shopify(warmup=False):
            body = http.post(f"{base}/shopify/admin/api/2026-07/graphql.json", json={"query": query, "variables": {"after": state["after"]}},
                             headers={"X-Shopify-Access-Token": creds.shopify_access_token}).json()
            page = body["data"]["orders"]
            state["after"] = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
            return len(page["nodes"]) if (state["after"] or warmup) else None
        results.append(("shopify", *_walk(shopify)))

        page_no = {"n": 0}

        def shipbob(warmup=False):
            page_no["n"] += 1
            r = http.get(f"{base}/shipbob/2026-07/order", params={"Page": page_no["n"], "Limit": 250},
                         headers={"Authorization": f"Bearer {creds.shipbob_token}"})
            return len(r.json()) if r.headers.get("next-page") or warmup else None
        results.append(("shipbob", *_walk(shipbob)))

        cursor = {"before": None}

        def easypost(warmup=False):
            params = {"page_size": 100} | ({"before_id": cursor["before"]} if cursor["before"] else {})
            body = http.get(f"{base}/easypost/v2/trackers", params=params, auth=(creds.easypost_api_key, "")).json()
            cursor["before"] = body["trackers"][-1]["id"] if body["trackers"] else None
            return len(body["trackers"]) if body["has_more"] or warmup else None
        results.append(("easypost", *_walk(easypost)))

        basic = base64.b64encode(f"{creds.xero_client_id}:{creds.xero_client_secret}".encode()).decode()
        token = http.post(f"{base}/xero/connect/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
        xero_page = {"n": 0}

        def xero(warmup=False):
            xero_page["n"] += 1
            body = http.get(f"{base}/xero/api.xro/2.0/Invoices", params={"page": xero_page["n"], "pageSize": 100},
                            headers={"Authorization": f"Bearer {token}", "xero-tenant-id": creds.xero_tenant_id,
                                     "Accept": "application/json"}).json()
            return len(body["Invoices"]) if body["Invoices"] else None
        results.append(("xero", *_walk(xero)))

        ns_basic = base64.b64encode(f"{creds.netsuite_client_id}:{creds.netsuite_client_secret}".encode()).decode()
        ns_token = http.post(f"{base}/netsuite/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {ns_basic}"}).json()["access_token"]
        ns_offset = {"n": 0}

        def netsuite(warmup=False):
            body = http.get(f"{base}/netsuite/services/rest/record/v1/invoice", params={"limit": 1000, "offset": ns_offset["n"]},
                            headers={"Authorization": f"Bearer {ns_token}"}).json()
            ns_offset["n"] += body["count"]
            return body["count"] if body["hasMore"] or warmup else None
        results.append(("netsuite", *_walk(netsuite)))

        lwa = http.post(f"{base}/amazon/auth/o2/token", data={
            "grant_type": "refresh_token", "refresh_token": creds.amazon_refresh_token,
            "client_id": creds.amazon_lwa_client_id, "client_secret": creds.amazon_lwa_client_secret}).json()["access_token"]
        amazon_token = {"next": None}

        def amazon(warmup=False):
            # the filters go with every page; the token only says where the next page starts
            params = {"createdAfter": "2024-11-01T00:00:00Z", "marketplaceIds": "ATVPDKIKX0DER", "maxResultsPerPage": 100}
            if amazon_token["next"]:
                params["paginationToken"] = amazon_token["next"]
            body = http.get(f"{base}/amazon/orders/2026-01-01/orders", params=params, headers={"x-amz-access-token": lwa}).json()
            amazon_token["next"] = (body.get("pagination") or {}).get("nextToken")
            return len(body["orders"]) if amazon_token["next"] or warmup else None
        results.append(("amazon", *_walk(amazon)))
    finally:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return results
