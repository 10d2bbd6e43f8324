"""The ShipBob connector over real HTTP against the emulator: backfill, incremental, faults,
quarantine, crash and resume, refused credentials, pacing and safe writes."""
from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from datetime import timedelta

import httpx
import polars as pl
import pytest

from connectors.ingest import run_stream
from connectors.raw_store import RawStore
from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from connectors.shipbob import DAMAGED_ORDER, SHAPES, ShipBobClient, ShipBobPacer, ShipBobSettings, streams
from connectors.transport import RetryPolicy, SourceError
from tests.conftest import SMALL_SEED, fresh_world, serve

SCALE = 30  # the emulator runs its 150-a-minute window 30x faster and the client paces to match
ENTITIES = ("orders", "shipments", "inventory", "receiving_orders")


@contextmanager
def live(world, monkeypatch, faults: FaultConfig | None = None, scale: float = SCALE):
    """A throttled ShipBob emulator over ``world`` and the settings that point at it."""
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(scale))
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=scale), faults=faults, sources=("shipbob",)) as (base, app):
        yield ShipBobSettings.from_env(connector_settings(base, SandboxCredentials(SMALL_SEED))), app.state.ctx


def client_for(settings: ShipBobSettings, **kw) -> ShipBobClient:
    # a quick retry policy keeps fault tests short; the waits the source asks for still apply
    return ShipBobClient(settings, policy=RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.5), **kw)


def run_all(client: ShipBobClient, store: RawStore) -> dict:
    return {s.entity: run_stream(store, s) for s in streams(client)}


def snapshot(store: RawStore, settings: ShipBobSettings) -> dict[str, list]:
    """Every ShipBob raw table without load times, sorted, and the streams' cursors.

    Payloads carry the server's own URL (receiving box labels); it is written as SANDBOX so
    runs against two servers compare.
    """
    out = {}
    for entity in ENTITIES:
        rows = store.con.execute(f"select * exclude (loaded_at) from {store.table('shipbob', entity)}").fetchall()
        rows = [tuple(v.replace(settings.base_url, "SANDBOX") if isinstance(v, str) else v for v in row) for row in rows]
        out[entity] = sorted(rows, key=repr)
    out["state"] = store.con.execute(
        "select stream, cursor_value, resume from raw._sync_state where stream like 'shipbob__%' order by 1").fetchall()
    return out


def keys(store: RawStore, entity: str) -> list:
    return [r[0] for r in store.con.execute(f"select id from {store.table('shipbob', entity)}").fetchall()]


def expected_keys(world) -> dict[str, set]:
    """What the world says ShipBob shows as of its clock."""
    now = world.now()
    c = pl.col
    orders = world.table("orders").filter(c("shipbob_order_id").is_not_null() & (c("created_at") <= now))
    shipments = world.table("shipments").filter(
        (c("created_at") <= now) & c("order_key").is_in(orders["order_key"].implode()))
    variants = world.table("variants").filter(
        ~c("is_bundle") & c("shipbob_inventory_id").is_not_null() & (c("created_at").is_null() | (c("created_at") <= now)))
    receiving = world.table("receiving_orders").filter(c("created_at") <= now)
    return {"orders": set(orders["shipbob_order_id"].to_list()), "shipments": set(shipments["shipment_id"].to_list()),
            "inventory": set(variants["shipbob_inventory_id"].to_list()), "receiving_orders": set(receiving["wro_id"].to_list())}


def assert_matches_world(store: RawStore, world) -> None:
    expected = expected_keys(world)
    for entity in ENTITIES:
        found = keys(store, entity)
        assert len(found) == len(set(found)), f"{entity}: duplicate keys"
        assert set(found) == expected[entity], f"{entity}: raw table differs from what ShipBob shows"


@pytest.fixture(scope="module")
def clean_run(small_world_path, tmp_path_factory):
    """A fault-free backfill of every stream at the world's starting clock, as a snapshot."""
    folder = tmp_path_factory.mktemp("shipbob_clean")
    with pytest.MonkeyPatch.context() as monkeypatch, live(fresh_world(small_world_path, folder), monkeypatch) as (settings, _):
        store = RawStore(folder / "clean.duckdb")
        with client_for(settings) as client:
            run_all(client, store)
        yield snapshot(store, settings)
        store.close()


# ----------------------------------------------------------------------------- backfill and incremental
def test_backfill_then_incremental_lands_latest_versions(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, ctx):
        client = client_for(settings)
        store = RawStore(tmp_path / "w.duckdb")
        backfill = run_all(client, store)
        assert_matches_world(store, world)
        assert backfill["orders"].pages > 1 and backfill["shipments"].records == len(expected_keys(world)["shipments"])

        world.set_clock(world.now() + timedelta(days=4))
        before = len(keys(store, "orders"))
        incremental = run_all(client, store)
        assert_matches_world(store, world)
        assert len(keys(store, "orders")) > before
        # only what changed (plus the lookback) is read again
        for entity in ("orders", "shipments"):
            assert incremental[entity].records < backfill[entity].records / 3, entity

        # every row is the version ShipBob shows now
        current = {o["id"]: o for page in client.order_pages(None, None) for o in page.records}
        stored = dict(store.con.execute("select id, payload from raw.shipbob__orders").fetchall())
        assert {k: json.loads(v) for k, v in stored.items()} == current
        shipments = {s["id"]: s for o in current.values() for s in o["shipments"]}
        stored = dict(store.con.execute("select id, payload from raw.shipbob__shipments").fetchall())
        assert {k: json.loads(v) for k, v in stored.items()} == shipments
        row = store.con.execute("select count(*) from raw.shipbob__orders where updated_at < created_date").fetchone()
        assert row[0] == 0
        client.close()
        store.close()


# ----------------------------------------------------------------------------- faults
FAULTS = {"seed": 7, "shipbob": {"rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
                                 "rate_timeout": 0.1, "timeout_seconds": 1.0}}


def test_faults_end_in_the_same_tables_as_a_clean_run(world, monkeypatch, tmp_path, clean_run):
    with live(world, monkeypatch, FaultConfig.from_mapping(FAULTS)) as (settings, ctx):
        faulted = RawStore(tmp_path / "faulted.duckdb")
        with client_for(settings, timeout=0.5) as client:
            run_all(client, faulted)
            assert client.stats["throttled"] > 0 and client.stats["retries"] > 0
        injected = ctx.faults["shipbob"].injected
        # with these seeds every kind is drawn; a slow machine (extra retries) may shift the draws
        assert "429" in injected and len(injected) >= 3, injected
        assert snapshot(faulted, settings) == clean_run
    assert faulted.con.execute("select count(*) from raw._quarantine").fetchone()[0] == 0


def test_missing_fields_are_quarantined_naming_the_field(world, monkeypatch, tmp_path):
    faults = FaultConfig.from_mapping({"seed": 3, "shipbob": {"rate_missing_field": 0.05}})
    with live(world, monkeypatch, faults) as (settings, _):
        store = RawStore(tmp_path / "w.duckdb")
        with client_for(settings) as client:
            results = run_all(client, store)
    quarantined = store.con.execute("select entity, record_id, reason, payload from raw._quarantine").fetchall()
    assert sum(r.quarantined for r in results.values()) == len(quarantined) > 0
    expected = expected_keys(world)
    damaged_orders = set()
    for entity, record_id, reason, payload in quarantined:
        record = json.loads(payload)
        field = reason.split(":")[0]
        if record.get(DAMAGED_ORDER):
            # an order that came without its shipments list: its shipments are accounted for here
            assert entity == "shipments" and field == "shipments" and "shipments" not in record["order"]
            damaged_orders.add(record["order_id"])
        else:
            assert field not in record, (entity, reason)
            assert int(record_id) in expected[entity]
    for entity in ("orders", "inventory", "receiving_orders"):
        loaded = set(keys(store, entity))
        held = {int(r[1]) for r in quarantined if r[0] == entity}
        assert loaded | held == expected[entity], entity
        assert not loaded & held
    loaded = set(keys(store, "shipments"))
    shipments_of_damaged = set(world.table("shipments").filter(
        pl.col("shipbob_order_id").is_in(sorted(damaged_orders)) & (pl.col("created_at") <= world.now()))["shipment_id"].to_list())
    held = {int(r[1]) for r in quarantined if r[0] == "shipments" and r[1] is not None}
    assert loaded | held | shipments_of_damaged == expected["shipments"]
    # every row that loaded carries what closeloop relies on
    for (payload,) in store.con.execute("select payload from raw.shipbob__orders").fetchall():
        assert {"reference_id", "status", "created_date", "shipments", "products"} <= set(json.loads(payload))


# ----------------------------------------------------------------------------- crash and resume
class Crash(RuntimeError):
    pass


def crashing(stream, after_pages: int):
    """The same stream, whose reader dies after ``after_pages`` pages (committed by the runner)."""
    def read(since, resume):
        for n, page in enumerate(stream.read(since, resume)):
            if n == after_pages:
                raise Crash(f"killed after {after_pages} pages")
            yield page
    return dataclasses.replace(stream, read=read)


def test_a_crash_mid_stream_then_a_rerun_ends_with_the_same_tables(world, monkeypatch, tmp_path, clean_run):
    with live(world, monkeypatch) as (settings, _):
        with client_for(settings) as client:
            store = RawStore(tmp_path / "crashed.duckdb")
            for stream in streams(client):
                with pytest.raises(Crash):
                    run_stream(store, crashing(stream, after_pages=3 if stream.entity in ("orders", "shipments") else 0))
            state = dict(store.con.execute("select stream, resume from raw._sync_state").fetchall())
            assert json.loads(state["shipbob__orders"])["page"]["next"]
            resumed = run_all(client, store)
            assert resumed["orders"].resumed and resumed["orders"].pages < 18
        assert snapshot(store, settings) == clean_run


# ----------------------------------------------------------------------------- refusals and secrets
def test_wrong_token_raises_source_error_without_the_secret(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, _):
        wrong = dataclasses.replace(settings, access_token="sbpat_not-the-right-one-123")
        with client_for(wrong) as client:
            with pytest.raises(SourceError) as caught:
                run_stream(RawStore(tmp_path / "w.duckdb"), streams(client)[0])
    message = str(caught.value)
    assert message.startswith("shipbob: GET ") and "/2026-07/order" in message and "HTTP 401" in message
    assert "not-the-right-one" not in message and settings.access_token not in message
    assert not caught.value.retryable
    assert settings.access_token not in repr(settings) and "not-the-right" not in repr(wrong)
    with pytest.raises(ValueError, match="SHIPBOB_ACCESS_TOKEN"):
        ShipBobSettings.from_env({"SHIPBOB_BASE_URL": "https://api.shipbob.com"})
    with pytest.raises(ValueError, match="SHIPBOB_CHANNEL_ID"):
        ShipBobSettings.from_env({"SHIPBOB_BASE_URL": "https://x", "SHIPBOB_ACCESS_TOKEN": "t", "SHIPBOB_CHANNEL_ID": "abc"})
    assert ShipBobSettings.from_env({"SHIPBOB_BASE_URL": "https://x", "SHIPBOB_ACCESS_TOKEN": "t"}).api_version == "2026-07"


# ----------------------------------------------------------------------------- pacing
def test_remaining_calls_zero_holds_requests_until_the_window_frees():
    slept: list[float] = []
    pacer = ShipBobPacer(150, 60.0)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        pacer.paused_until = 0.0  # time has passed: the pause is over

    pacer.sleep = sleep
    pacer.observe(httpx.Headers({"x-remaining-calls": "12"}))
    pacer.acquire()
    assert slept == []
    pacer.observe(httpx.Headers({"x-remaining-calls": "0", "x-retry-after": "3"}))
    pacer.acquire()
    assert len(slept) == 1 and 2.5 < slept[0] <= 3


def test_a_window_spent_by_another_client_is_waited_out(world, monkeypatch, tmp_path):
    with live(world, monkeypatch, scale=30) as (settings, ctx):
        # another client of the same account spends the whole window (2 s at this scale)
        with httpx.Client(headers={"Authorization": f"Bearer {settings.access_token}"}) as other:
            answers = [other.get(f"{settings.base_url}/2026-07/channel") for _ in range(150)]
        assert answers[-1].headers["x-remaining-calls"] == "0"
        with client_for(settings) as client:
            store = RawStore(tmp_path / "w.duckdb")
            results = {s.entity: run_stream(store, s) for s in streams(client)[2:]}
            assert client.pacer.paused_until > 0  # ShipBob's "no calls left" was heard
        expected = expected_keys(world)
        assert set(keys(store, "inventory")) == expected["inventory"]
        assert set(keys(store, "receiving_orders")) == expected["receiving_orders"]
        assert results["inventory"].records == len(expected["inventory"])


# ----------------------------------------------------------------------------- writes
def test_writes_are_safe_to_retry(world, monkeypatch):
    with live(world, monkeypatch) as (settings, ctx):
        with client_for(settings) as client:
            order = {"reference_id": "reship-1001-a", "shipping_method": "Standard",
                     "recipient": {"name": "A Customer", "address": {"address1": "1 Main St", "city": "Austin",
                                                                     "state": "TX", "country": "US", "zip_code": "78701"}},
                     "products": [{"reference_id": world.table("variants").filter(~pl.col("is_bundle"))["sku"][0], "quantity": 1}]}
            first = client.create_order(order)
            again = client.create_order(order)
            assert first["id"] == again["id"] and first["reference_id"] == "reship-1001-a"
            variant = world.table("variants").filter(pl.col("shipbob_inventory_id").is_not_null() & ~pl.col("is_bundle")).row(0, named=True)
            center = client.request("GET", f"{client.version}/fulfillment-center").body[0]["id"]
            wro = {"purchase_order_number": "PO-TEST-1", "fulfillment_center": {"id": center}, "package_type": "Package",
                   "box_packaging_type": "EverythingInOneBox", "expected_arrival_date": "2026-12-01T00:00:00Z",
                   "boxes": [{"tracking_number": "1Z999", "box_items": [{"inventory_id": variant["shipbob_inventory_id"], "quantity": 12}]}]}
            first = client.create_receiving_order(wro)
            again = client.create_receiving_order(wro)
            assert first["id"] == again["id"] and again["purchase_order_number"] == "PO-TEST-1"
            with pytest.raises(SourceError) as caught:  # a real validation error is not mistaken for a duplicate
                client.create_receiving_order({**wro, "purchase_order_number": "PO-TEST-2", "package_type": "Crate"})
            assert caught.value.status == 400
            # answers lost to timeouts (the server applied the write): the retry finds the order, never a second one
            ctx.faults["shipbob"].reconfigure(FaultConfig.from_mapping(
                {"seed": 1, "shipbob": {"rate_timeout": 0.5, "timeout_seconds": 0.6}}))
        with client_for(settings, timeout=0.3) as client:
            created = client.create_order({**order, "reference_id": "reship-1002-a"})
            assert ctx.faults["shipbob"].injected.get("timeout")
            ctx.faults["shipbob"].reconfigure(FaultConfig.none())
            same = client.request("GET", f"{client.version}/order", params={"ReferenceIds": "reship-1002-a"}).body
            assert [o["id"] for o in same] == [created["id"]]
        without_channel = dataclasses.replace(settings, channel_id=None)
        with client_for(without_channel) as client, pytest.raises(ValueError, match="SHIPBOB_CHANNEL_ID"):
            client.create_order(order)


def test_shapes_name_the_key_and_updated_time():
    assert SHAPES["orders"].key.name == "id" and SHAPES["orders"].updated_at.name == "updated_at"
    assert SHAPES["shipments"].updated_at.name == "last_update_at"
    assert SHAPES["inventory"].updated_at is None
