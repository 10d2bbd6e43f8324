"""The Shopify connector against the Admin GraphQL emulator over real HTTP on 127.0.0.1.

The world's clock is set a few weeks after its start so a full backfill stays small; limits run
at a throttle scale (server and client alike) so pacing and THROTTLED answers are exercised fast.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest

from connectors import shopify
from connectors.ingest import Stream, run_stream
from connectors.pacing import CostPacer, Pacer
from connectors.raw_store import RawStore
from connectors.sandbox.emulators import shopify_views as views
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.shopify_render import LOCATION_ID
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from connectors.transport import SourceError
from tests.conftest import serve

SCALE = 40.0
BACKFILL_DAYS = 14  # the clock stands this long after the world's start: a few hundred orders
ENTITIES = ("orders", "products", "inventory_levels", "payouts", "balance_transactions", "disputes")
KEYS = {"orders": "order_id", "products": "product_id", "inventory_levels": "level_key", "payouts": "payout_id",
        "balance_transactions": "transaction_id", "disputes": "dispute_id"}


@pytest.fixture
def shop_world(world, monkeypatch):
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(SCALE))
    world.set_clock(world.meta.start + timedelta(days=BACKFILL_DAYS))
    return world


@contextmanager
def shop_server(world, faults: FaultConfig | None = None):
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=SCALE), faults=faults, sources=("shopify",)) as (base, app):
        yield base, app.state.ctx


def make_client(base, ctx, **kw) -> shopify.ShopifyClient:
    return shopify.ShopifyClient(shopify.ShopifySettings.from_env(connector_settings(base, ctx.credentials)), **kw)


def sync(store: RawStore, client: shopify.ShopifyClient, wrap=None, bulk_backfill: bool = True, only=None) -> dict:
    """Run every stream once; ``wrap`` may replace a stream (crash injection)."""
    results = {}
    for stream in shopify.streams(client, bulk_backfill=bulk_backfill):
        if only and stream.entity not in only:
            continue
        if wrap:
            stream = wrap(stream)
        results[stream.entity] = run_stream(store, stream)
    return results


def table(store: RawStore, entity: str) -> list[tuple]:
    """A raw table's rows without loaded_at, in key order."""
    return store.con.execute(
        f"select * exclude (loaded_at) from raw.shopify__{entity} order by {KEYS[entity]}").fetchall()


def keys(store: RawStore, entity: str) -> list[str]:
    return [r[0] for r in store.con.execute(f"select {KEYS[entity]} from raw.shopify__{entity}").fetchall()]


def expected_keys(ctx, now) -> dict[str, set[str]]:
    """What the shop shows at the sandbox clock, from the emulator's own views of the world."""
    as_text = lambda frame, column: {str(v) for v in frame[column].to_list()}
    variants = views.shopify_variants(ctx, now)
    stock = views.inventory_levels(ctx, now)
    return {
        "orders": as_text(views.shopify_orders(ctx, now), "order_id"),
        "products": as_text(views.shopify_products(ctx, now), "product_id"),
        "inventory_levels": {f"{r['inventory_item_id']}:{LOCATION_ID}" for r in variants.to_dicts() if r["sku"] in stock},
        "payouts": as_text(views.shopify_payouts(ctx, now), "payout_id"),
        "balance_transactions": as_text(views.shopify_balance_transactions(ctx, now), "bt_id"),
        "disputes": as_text(views.shopify_disputes(ctx, now), "dispute_id"),
    }


def test_backfill_then_increment_lands_exactly_the_shop(shop_world, tmp_path):
    world = shop_world
    with shop_server(world) as (base, ctx):
        store = RawStore(tmp_path / "warehouse.duckdb")
        waits: list[float] = []
        pacer = CostPacer(maximum=1000.0, restore_rate=50.0 * SCALE, sleep=lambda s: (waits.append(s), time.sleep(s)))
        client = make_client(base, ctx, pacer=pacer)
        backfill = sync(store, client)
        expected = expected_keys(ctx, world.now())
        for entity in ENTITIES:
            landed = keys(store, entity)
            assert len(landed) == len(set(landed)), entity
            assert set(landed) == expected[entity], entity
        assert expected["orders"] and expected["balance_transactions"] and expected["payouts"] and expected["inventory_levels"]
        assert all(r.quarantined == 0 for r in backfill.values())
        bulk_runs = len(ctx.store.all("shopify", "bulk_operation"))
        assert bulk_runs == 4  # orders, products, payouts, balance transactions

        # nested records came along: line items, fulfillment lines with tracking, refund lines
        payloads = [json.loads(p) for (p,) in store.con.execute("select payload from raw.shopify__orders").fetchall()]
        assert all(p["lineItems"]["nodes"] for p in payloads)
        fulfilled = [f for p in payloads for f in p["fulfillments"]]
        assert fulfilled and all("nodes" in f["fulfillmentLineItems"] and f["trackingInfo"] for f in fulfilled)
        assert sum(len(f["fulfillmentLineItems"]["nodes"]) for f in fulfilled) >= len(fulfilled) * 0.9
        refunds = [r for p in payloads for r in p["refunds"]]
        assert refunds and all("refundLineItems" in r and "transactions" in r for r in refunds)

        before = world.now()
        world.set_clock(before + timedelta(days=3))
        increment = sync(store, client)
        assert len(ctx.store.all("shopify", "bulk_operation")) == bulk_runs  # increments page, no bulk
        expected = expected_keys(ctx, world.now())
        for entity in ENTITIES:
            landed = keys(store, entity)
            assert len(landed) == len(set(landed)), entity
            assert set(landed) == expected[entity], entity
        # changed orders hold their latest version: the raw updated_at is the shop's updatedAt now
        newest = dict(store.con.execute("select order_id, updated_at from raw.shopify__orders").fetchall())
        view = views.shopify_orders(ctx, world.now()).select("order_id", "updated_at").to_dicts()
        assert all(newest[str(r["order_id"])] == r["updated_at"] for r in view)
        assert any(r["updated_at"] > before for r in view)
        # orders delivered during the advance changed too (a delivery updates the order), so on this
        # young shop many come back; the increment still reads fewer than the backfill
        assert increment["orders"].records < backfill["orders"].records
        # the pacer learned the shop's bucket, and Shopify rarely had to say THROTTLED (whether the
        # pacer had to wait depends on the machine's speed, so it is measured by 'make bench', not here)
        assert pacer.maximum == 2000.0
        assert client.stats["throttled"] <= client.stats["requests"] * 0.05, client.stats
        assert sum(r.records for r in increment.values()) < sum(r.records for r in backfill.values())


def test_bulk_and_paged_reads_land_the_same_records(shop_world, tmp_path, monkeypatch):
    """The backfill (bulk) and the increments (pages, nested connections continued) agree."""
    monkeypatch.setattr(shopify, "ORDER_LINES", 1)  # small worlds have 1-3 lines: force continuation pages
    monkeypatch.setattr(shopify, "PRODUCT_VARIANTS", 1)
    shop_world.set_clock(shop_world.meta.start + timedelta(days=7))
    both = ("orders", "products")
    with shop_server(shop_world) as (base, ctx):
        bulk, paged = RawStore(tmp_path / "bulk.duckdb"), RawStore(tmp_path / "paged.duckdb")
        sync(bulk, make_client(base, ctx), only=both)
        client = make_client(base, ctx)
        sync(paged, client, bulk_backfill=False, only=both)
        assert "OrderLines" in {shopify._operation_name(text) for text in client.costs}
    for entity in both:
        assert table(paged, entity) == table(bulk, entity), entity


FAULTS = {"seed": 11, "shopify": {"rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
                                  "rate_timeout": 0.02, "timeout_seconds": 0.8, "retry_after_seconds": 0.05}}


def backfill_and_increment(world, tmp_path, name, faults=None, **client_kw):
    with shop_server(world, FaultConfig.from_mapping(faults) if faults else None) as (base, ctx):
        store = RawStore(tmp_path / f"{name}.duckdb")
        client = make_client(base, ctx, **client_kw)
        sync(store, client)
        world.set_clock(world.now() + timedelta(days=3))
        sync(store, client)
        tables = {entity: table(store, entity) for entity in ENTITIES}
        store.close()
        return tables, client.stats


def test_faults_change_nothing_in_the_tables(small_world_path, tmp_path, monkeypatch):
    from tests.conftest import fresh_world

    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(SCALE))
    worlds = []
    for name in ("clean", "faulty"):
        (tmp_path / name).mkdir()
        w = fresh_world(small_world_path, tmp_path / name)
        w.set_clock(w.meta.start + timedelta(days=10))
        worlds.append(w)
    clean, _ = backfill_and_increment(worlds[0], tmp_path, "clean")
    # The emulator's injected THROTTLED answer reports restoreRate 100 whatever the throttle
    # scale, so a cost pacer believing it would wait 20x too long; the faulty run therefore
    # leaves pacing to the server's THROTTLED answers (throttle_wait), which it also exercises.
    faulty, stats = backfill_and_increment(worlds[1], tmp_path, "faulty", FAULTS, timeout=0.4, pacer=Pacer())
    assert stats["retries"] > 0 and stats["throttled"] > 0
    for entity in ENTITIES:
        assert faulty[entity] == clean[entity], entity


def test_missing_fields_are_quarantined_with_the_field_named(shop_world, tmp_path):
    faults = FaultConfig.from_mapping({"seed": 5, "shopify": {"rate_missing_field": 0.03}})
    shop_world.set_clock(shop_world.meta.start + timedelta(days=10))  # paged reads of everything: keep it short
    with shop_server(shop_world, faults) as (base, ctx):
        store = RawStore(tmp_path / "warehouse.duckdb")
        # paged reads: the emulator damages records of API pages, never bulk files
        results = sync(store, make_client(base, ctx), bulk_backfill=False)
        expected = expected_keys(ctx, shop_world.now())
    quarantined = store.con.execute("select entity, record_id, reason, payload from raw._quarantine").fetchall()
    assert quarantined and sum(r.quarantined for r in results.values()) >= len(quarantined)
    paths = {f.name: f.path for shape in shopify.SHAPES.values() for f in shape.all_fields if isinstance(f.path, str)}
    for entity, record_id, reason, payload in quarantined:
        record = json.loads(payload)
        named = reason.split(":")[0]
        if named in paths:  # a typed column whose source field came back absent or null
            assert shopify.dig(record, paths[named]) is None, reason
        else:  # a selected field absent from the record
            head, _, tail = named.partition(".")
            assert (tail not in record[head]) if tail else (named not in record or record.get("_missing") == named), reason
    damaged = {}
    for entity, record_id, _, payload in quarantined:
        record = json.loads(payload)
        damaged.setdefault(entity, set()).add(record_id or record.get("legacyResourceId") or shopify.gid_tail(record.get("id")))
    for entity in ENTITIES:
        landed = set(keys(store, entity))
        assert landed <= expected[entity], entity
        if entity != "inventory_levels":  # a damaged inventory item carries no level key
            assert expected[entity] - landed <= damaged.get(entity, set()), entity


CRASHED = ("orders", "balance_transactions")


def test_a_crash_mid_stream_then_a_rerun_ends_with_the_same_tables(shop_world, tmp_path, monkeypatch):
    monkeypatch.setattr(shopify, "BULK_PAGE", 50)
    shop_world.set_clock(shop_world.meta.start + timedelta(days=10))

    class Crash(RuntimeError):
        pass

    def crash_after(pages: int):
        def wrap(stream: Stream) -> Stream:
            def read(since, resume):
                for n, page in enumerate(stream.read(since, resume)):
                    if n == pages:
                        raise Crash(stream.entity)
                    yield page
            return Stream(stream.source, stream.entity, stream.shape, read, stream.lookback)
        return wrap

    with shop_server(shop_world) as (base, ctx):
        store = RawStore(tmp_path / "crashed.duckdb")
        client = make_client(base, ctx)
        with pytest.raises(Crash):
            sync(store, client, wrap=crash_after(2), only=("orders",))
        assert store.state("shopify", "orders").resume["page"]["parents_done"] == 100
        runs = len(ctx.store.all("shopify", "bulk_operation"))
        resumed = sync(store, client, only=("orders",))
        assert resumed["orders"].resumed
        assert len(ctx.store.all("shopify", "bulk_operation")) == runs  # the same bulk result, not a new run
        sync(store, client, only=("balance_transactions",))

        # an increment killed mid-way resumes from its stored cursor
        shop_world.set_clock(shop_world.now() + timedelta(days=3))
        with pytest.raises(Crash):
            sync(store, client, wrap=crash_after(1), only=("orders",))
        assert "after" in store.state("shopify", "orders").resume["page"]
        sync(store, client, only=CRASHED)

        reference = RawStore(tmp_path / "reference.duckdb")
        shop_world.set_clock(shop_world.now() - timedelta(days=3))
        sync(reference, client, only=CRASHED)
        shop_world.set_clock(shop_world.now() + timedelta(days=3))
        sync(reference, client, only=CRASHED)
    for entity in CRASHED:
        assert table(store, entity) == table(reference, entity), entity


def test_disputes_and_payments_at_a_later_clock(shop_world, tmp_path):
    """The first disputes come weeks after the first orders: read the payments streams later on."""
    shop_world.set_clock(shop_world.meta.start + timedelta(days=50))
    payments = ("payouts", "balance_transactions", "disputes")
    with shop_server(shop_world) as (base, ctx):
        store = RawStore(tmp_path / "warehouse.duckdb")
        client = make_client(base, ctx)
        sync(store, client, only=payments)
        shop_world.set_clock(shop_world.now() + timedelta(days=7))
        increment = sync(store, client, only=payments)
        expected = expected_keys(ctx, shop_world.now())
        for entity in payments:
            landed = keys(store, entity)
            assert len(landed) == len(set(landed)) and set(landed) == expected[entity], entity
        assert expected["disputes"]
        # a balance transaction's payout assignment and status are the shop's current ones
        current = {str(r["bt_id"]): (None if r["payout_id"] is None else str(r["payout_id"]), r["payout_status"])
                   for r in views.shopify_balance_transactions(ctx, shop_world.now()).to_dicts()}
        landed = {r[0]: (r[1], r[2]) for r in store.con.execute(
            "select transaction_id, payout_id, payout_status from raw.shopify__balance_transactions").fetchall()}
        assert landed == current
        disputes = store.con.execute("select order_id, amount, currency, status from raw.shopify__disputes").fetchall()
        assert all(order_id and amount > 0 and currency and status for order_id, amount, currency, status in disputes)
        assert increment["balance_transactions"].records < len(current)


def test_one_bulk_query_at_a_time_waits_or_adopts(shop_world, tmp_path):
    from connectors import shopify_queries as queries

    shop_world.set_clock(shop_world.meta.start + timedelta(days=5))
    with shop_server(shop_world) as (base, ctx):
        client = make_client(base, ctx)
        store = RawStore(tmp_path / "warehouse.duckdb")
        other = client.bulk.start(queries.PRODUCTS_BULK)  # someone else's run, still going
        sync(store, client, only=("orders",))
        assert client.bulk.get(other["id"])["status"] == "COMPLETED"
        assert len(ctx.store.all("shopify", "bulk_operation")) == 2
        # our own start whose answer was lost: the stream adopts the running operation
        lost = client.bulk.start(queries.PAYOUTS_BULK)
        sync(store, client, only=("payouts",))
        assert len(ctx.store.all("shopify", "bulk_operation")) == 3
        assert client.bulk.get(lost["id"])["status"] == "COMPLETED"
        assert set(keys(store, "payouts")) == expected_keys(ctx, shop_world.now())["payouts"]


def test_write_backs_show_in_the_next_read_and_user_errors_raise(shop_world, tmp_path):
    with shop_server(shop_world) as (base, ctx):
        client = make_client(base, ctx)
        order_id = str(views.shopify_orders(ctx, shop_world.now())["order_id"][0])
        client.add_tags(order_id, ["closeloop:reshipped"])
        updated = client.update_order(order_id, note="reship approved")
        assert updated["note"] == "reship approved" and "closeloop:reshipped" in updated["tags"]
        with pytest.raises(SourceError, match="userErrors"):
            client.add_tags("1", ["nope"])


def test_a_wrong_token_raises_a_source_error_without_the_secret(shop_world):
    secret = "shpat_wrong_secret_value_123"
    with shop_server(shop_world) as (base, ctx):
        env = connector_settings(base, ctx.credentials) | {"SHOPIFY_ACCESS_TOKEN": secret}
        settings = shopify.ShopifySettings.from_env(env)
        assert secret not in repr(settings)
        client = shopify.ShopifyClient(settings)
        with pytest.raises(SourceError) as caught:
            list(shopify.streams(client)[0].read(None, None))
    message = str(caught.value)
    assert message.startswith("shopify: POST ") and "/admin/api/2026-07/graphql.json" in message and "401" in message
    assert secret not in message and secret not in repr(caught.value)
    assert not caught.value.retryable


def test_settings_name_what_is_missing():
    with pytest.raises(ValueError, match="SHOPIFY_ACCESS_TOKEN"):
        shopify.ShopifySettings.from_env({"SHOPIFY_SHOP_URL": "https://example.myshopify.com"})
    settings = shopify.ShopifySettings.from_env({"SHOPIFY_SHOP_URL": "https://example.myshopify.com/", "SHOPIFY_ACCESS_TOKEN": "t"})
    assert settings.graphql_url == "https://example.myshopify.com/admin/api/2026-07/graphql.json"


def test_throttled_answer_waits_for_the_requested_cost():
    client = shopify.ShopifyClient(shopify.ShopifySettings("https://example.myshopify.com", "t"))
    body = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 752, "actualQueryCost": None,
                                    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 652, "restoreRate": 50.0}}}}
    assert client.throttle_wait(None, body) == pytest.approx(2.0)
    assert client.throttle_wait(None, {"data": {}, "extensions": body["extensions"]}) is None
