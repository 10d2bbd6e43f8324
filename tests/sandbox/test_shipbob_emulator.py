"""The ShipBob emulator over real HTTP: auth, paging, incremental filters, formats, writes, limits."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import polars as pl
import pytest

from connectors.sandbox.emulators.throttle import ThrottleSettings
from tests.conftest import serve

VERSION = "2026-07"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShipBobClient:
    """A thin client: base URL, auth header, and a walker that follows ``next-page``."""

    def __init__(self, base: str, ctx):
        self.root = f"{base}/shipbob"
        self.ctx = ctx
        self.http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {ctx.credentials.shipbob_token}"})

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(f"{self.root}/{VERSION}/{path}", params=params)

    def post(self, path: str, body: dict, channel: str | None = "default") -> httpx.Response:
        headers = {}
        if channel == "default":
            headers["shipbob_channel_id"] = str(self.ctx.credentials.shipbob_channel_id)
        elif channel is not None:
            headers["shipbob_channel_id"] = channel
        return self.http.post(f"{self.root}/{VERSION}/{path}", json=body, headers=headers)

    def walk(self, path: str, **params) -> tuple[list[dict], int]:
        """Every record of a list, following ``next-page``; also the number of pages."""
        response = self.get(path, **params)
        records, pages = [], 0
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            assert isinstance(body, list)
            records += body
            pages += 1
            following = response.headers.get("next-page")
            if not following:
                return records, pages
            assert following.startswith(f"/{VERSION}/{path}?")
            response = self.http.get(self.root + following)


@pytest.fixture
def shipbob(world):
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("shipbob",)) as (base, app):
        client = ShipBobClient(base, app.state.ctx)
        yield client
        client.http.close()


def visible_orders(world, now: datetime) -> pl.DataFrame:
    return world.table("orders").filter(pl.col("shipbob_order_id").is_not_null() & (pl.col("created_at") <= now))


# ----------------------------------------------------------------------------- auth and versions
def test_auth_errors_and_versions(shipbob):
    url = f"{shipbob.root}/{VERSION}/order"
    missing = httpx.get(url)
    assert missing.status_code == 401 and "x-remaining-calls" in missing.headers
    assert httpx.get(url, headers={"Authorization": "Bearer sbpat_wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": shipbob.ctx.credentials.shipbob_token}).status_code == 401
    ok = shipbob.get("order", Limit=1)
    assert ok.status_code == 200 and "x-remaining-calls" in ok.headers
    for version in ("2025-07", "2026-01"):
        assert shipbob.http.get(f"{shipbob.root}/{version}/order", params={"Limit": 1}).status_code == 200
    assert shipbob.http.get(f"{shipbob.root}/1.0/order").status_code == 404
    channels = shipbob.get("channel").json()
    assert channels["items"][0]["id"] == shipbob.ctx.credentials.shipbob_channel_id
    assert {"id", "name", "application_name", "scopes"} <= set(channels["items"][0])


# ----------------------------------------------------------------------------- orders
def test_order_pages_walk_every_visible_order_once(shipbob, world):
    now = world.now()
    orders, pages = shipbob.walk("order", Limit=37, SortOrder="Oldest")
    ids = [o["id"] for o in orders]
    expected = visible_orders(world, now)
    assert len(ids) == len(set(ids)) == expected.height
    assert set(ids) == set(expected["shipbob_order_id"].to_list())
    assert pages == max(1, -(-expected.height // 37))
    created = [instant(o["created_date"]) for o in orders]
    assert created == sorted(created)
    newest, _ = shipbob.walk("order", Limit=250)
    assert [o["id"] for o in newest] == ids[::-1]
    by_reference = dict(zip(expected["channel_order_id"].to_list(), expected["shipbob_order_id"].to_list()))
    for order in orders:
        assert by_reference[order["reference_id"]] == order["id"]
    bad = shipbob.get("order", Limit=251)
    assert bad.status_code == 400


def test_orders_as_of_the_clock_formats_and_statuses(shipbob, world):
    now = world.now()
    orders, _ = shipbob.walk("order", Limit=250)
    source = {r["shipbob_order_id"]: r for r in visible_orders(world, now).to_dicts()}
    shipments = world.table("shipments").filter(pl.col("created_at") <= now)
    shipped_ids = set(shipments.filter(pl.col("shipped_at") <= now)["shipment_id"].to_list())
    invoice = dict(zip(shipments["shipment_id"].to_list(), shipments["invoice_amount_cents"].to_list()))
    # a cancellation the warehouse ships anyway never reached the 3PL
    shipped_ever = set(world.table("shipments").filter(pl.col("shipped_at").is_not_null())["shipbob_order_id"].to_list())
    statuses = set()
    for order in orders:
        statuses.add(order["status"])
        row = source[order["id"]]
        assert order["type"] == "DTC"
        assert INSTANT.match(order["created_date"]) and instant(order["created_date"]) <= now
        assert order["financials"]["total_price"] == pytest.approx(row["total_cents"] / 100)
        assert all(isinstance(p["unit_price"], float) for p in order["products"])
        for shipment in order["shipments"]:
            assert shipment["order_id"] == order["id"]
            assert instant(shipment["created_date"]) <= now
            assert instant(shipment["last_update_at"]) <= now
            if shipment["id"] in shipped_ids:
                assert shipment["status"] == "Completed"
                assert shipment["tracking"]["tracking_number"]
                assert instant(shipment["tracking"]["shipping_date"]) <= now
                assert shipment["invoice_amount"] == pytest.approx(invoice[shipment["id"]] / 100)
                assert shipment["invoice_currency_code"] == "USD"
            else:
                assert shipment["status"] in ("Processing", "LabeledCreated", "Exception", "Cancelled")
                assert shipment["tracking"] is None and shipment["actual_fulfillment_date"] is None
            if shipment["delivery_date"]:
                assert instant(shipment["delivery_date"]) <= now
        if row["cancelled_at"] is not None and row["cancelled_at"] <= now and order["id"] not in shipped_ever:
            assert order["status"] == "Cancelled"
        if order["status"] == "Cancelled":
            assert row["cancelled_at"] is not None and not any(s["status"] == "Completed" for s in order["shipments"])
        if order["shipments"] and all(s["status"] == "Completed" for s in order["shipments"]):
            assert order["status"] in ("Fulfilled", "PartiallyFulfilled")
    assert statuses <= {"Processing", "PartiallyFulfilled", "Fulfilled", "Cancelled", "Exception"}
    # a shipment is served by its own path as well as inside its order
    some = next(o for o in orders if o["shipments"])
    shipment = some["shipments"][0]
    assert shipbob.get(f"shipment/{shipment['id']}").json() == shipment
    assert shipbob.get(f"order/{some['id']}/shipment").json() == some["shipments"]
    assert shipbob.get(f"order/{some['id']}").json() == some
    assert shipbob.get("order/999999999999").status_code == 404


def test_bundles_are_ordered_as_the_bundle_and_shipped_as_components(shipbob, world):
    bundles = set(world.table("variants").filter(pl.col("is_bundle"))["sku"].to_list())
    if not bundles:
        pytest.skip("this world has no bundles")
    orders, _ = shipbob.walk("order", Limit=250, HasTracking="true")
    bundle_orders = [o for o in orders if any(p["sku"] in bundles for p in o["products"])]
    assert bundle_orders, "expected a shipped bundle order"
    for order in bundle_orders:
        shipped = {p["sku"] for s in order["shipments"] for p in s["products"]}
        assert not shipped & bundles
        assert all(p["inventory_items"][0]["quantity"] > 0 for s in order["shipments"] for p in s["products"])


def test_last_update_filter_returns_orders_changed_after_a_clock_advance(shipbob, world):
    t1 = world.now().replace(microsecond=0)
    world.set_clock(t1)
    before = {o["id"]: o for o in shipbob.walk("order", Limit=250)[0]}
    t2 = world.set_clock(t1 + timedelta(days=2))
    after = {o["id"]: o for o in shipbob.walk("order", Limit=250)[0]}
    changed, _ = shipbob.walk("order", Limit=50, LastUpdateStartDate=stamp(t1), LastUpdateEndDate=stamp(t2))
    changed_ids = {o["id"] for o in changed}
    assert changed_ids, "two days of trading should change some orders"
    # every order that is new or whose record differs is in the incremental answer
    differing = {oid for oid, order in after.items() if before.get(oid) != order}
    assert differing <= changed_ids
    new = set(after) - set(before)
    assert new and new <= changed_ids
    shipped = world.table("shipments").filter((pl.col("shipped_at") > t1) & (pl.col("shipped_at") <= t2))
    assert set(shipped["shipbob_order_id"].to_list()) <= changed_ids
    # nothing dated after the new clock
    for order in after.values():
        assert instant(order["created_date"]) <= t2
        for shipment in order["shipments"]:
            assert instant(shipment["last_update_at"]) <= t2
    created_window, _ = shipbob.walk("order", Limit=250, StartDate=stamp(t1 + timedelta(seconds=1)))
    assert {o["id"] for o in created_window} == {
        oid for oid, o in after.items() if instant(o["created_date"]) >= t1 + timedelta(seconds=1)
    }


def test_nothing_after_the_clock_leaks_early_in_the_world(shipbob, world):
    early = world.set_clock(world.meta.start + timedelta(days=3))
    orders, _ = shipbob.walk("order", Limit=250)
    assert {o["id"] for o in orders} == set(visible_orders(world, early)["shipbob_order_id"].to_list())
    for order in orders:
        for shipment in order["shipments"]:
            for key in ("created_date", "last_update_at", "last_tracking_update_at", "actual_fulfillment_date", "delivery_date"):
                if shipment[key]:
                    assert instant(shipment[key]) <= early
    tracked, _ = shipbob.walk("order", Limit=250, HasTracking="true")
    assert all(any(s["tracking"] for s in o["shipments"]) for o in tracked)


# ----------------------------------------------------------------------------- inventory and receiving
def test_inventory_is_the_latest_daily_row_before_today(shipbob, world):
    now = world.now()
    items, _ = shipbob.walk("inventory", Limit=7)
    variants = world.table("variants").filter(~pl.col("is_bundle") & (pl.col("created_at") <= now))
    assert sorted(i["id"] for i in items) == sorted(variants["shipbob_inventory_id"].to_list())
    assert len({i["id"] for i in items}) == len(items)
    daily = world.table("inventory_daily").filter(pl.col("date") < now.date()).sort("date").group_by("sku").last()
    levels = {r["sku"]: r for r in daily.to_dicts()}
    for item in items:
        level = levels.get(item["sku"])
        expected = (level["on_hand"], level["committed"], level["fulfillable"], level["awaiting"]) if level else (0, 0, 0, 0)
        got = (item["total_onhand_quantity"], item["total_committed_quantity"],
               item["total_fulfillable_quantity"], item["total_awaiting_quantity"])
        assert got == expected
        centers = item["fulfillable_quantity_by_fulfillment_center"]
        assert sum(c["fulfillable_quantity"] for c in centers) == item["total_fulfillable_quantity"]
    one = items[0]
    assert shipbob.get(f"inventory/{one['id']}").json() == one
    assert shipbob.get("inventory", IDs=str(one["id"])).json() == [one]
    level = shipbob.get(f"inventory-level/{one['id']}").json()
    assert level["total_on_hand_quantity"] == one["total_onhand_quantity"]
    # the 2026 levels list walks with cursors
    seen, url = [], f"{shipbob.root}/{VERSION}/inventory-level?PageSize=5"
    while url:
        body = shipbob.http.get(url).json()
        seen += [i["inventory_id"] for i in body["items"]]
        url = shipbob.root + body["next"] if body["next"] else None
    assert sorted(seen) == sorted(i["id"] for i in items)


def test_receiving_orders_follow_arrival_and_completion(shipbob, world):
    now = world.now()
    wros, _ = shipbob.walk("receiving", Limit=10)
    source = world.table("receiving_orders").filter(pl.col("created_at") <= now)
    assert sorted(w["id"] for w in wros) == sorted(source["wro_id"].to_list())
    rows = {r["wro_id"]: r for r in source.to_dicts()}
    lines = world.table("receiving_lines")
    for wro in wros:
        row = rows[wro["id"]]
        completed = row["completed_at"] is not None and row["completed_at"] <= now
        arrived = row["arrived_at"] is not None and row["arrived_at"] <= now
        assert wro["status"] == ("Completed" if completed else "Arrived" if arrived else "Awaiting")
        assert wro["purchase_order_number"] == row["po_number"]
        assert instant(wro["last_updated_date"]) <= now
        expected = lines.filter(pl.col("wro_id") == wro["id"])
        assert sum(q["expected_quantity"] for q in wro["inventory_quantities"]) == expected["expected_quantity"].sum()
        received = sum(q["received_quantity"] for q in wro["inventory_quantities"])
        assert received == (expected["received_quantity"].fill_null(0).sum() if completed else 0)
    if wros:
        completed = [w for w in wros if w["status"] == "Completed"]
        listed = shipbob.get("receiving", Statuses="Completed", Limit=250).json()
        assert {w["id"] for w in listed} == {w["id"] for w in completed}
        first = wros[0]
        assert shipbob.get(f"receiving/{first['id']}").json() == first
        by_po = shipbob.get("receiving", PurchaseOrderNumbers=first["purchase_order_number"]).json()
        assert [w["id"] for w in by_po] == [first["id"]]
        assert INSTANT.match(first["insert_date"]) and INSTANT.match(first["last_updated_date"])
        assert shipbob.get("receiving", ExternalSync="true").json() == []


def test_completed_filter_picks_up_receiving_completed_after_a_clock_advance(shipbob, world):
    t1 = world.now().replace(microsecond=0)
    world.set_clock(t1)
    upcoming = world.table("receiving_orders").filter(pl.col("completed_at") > t1)["completed_at"]
    if upcoming.len() == 0:
        pytest.skip("no receiving completes after the clock in this world")
    t2 = world.set_clock(upcoming.min() + timedelta(hours=1))
    done = world.table("receiving_orders").filter((pl.col("completed_at") > t1) & (pl.col("completed_at") <= t2))
    listed, _ = shipbob.walk("receiving", Limit=5, CompletedStartDate=stamp(t1 + timedelta(seconds=1)))
    assert {w["id"] for w in listed} == set(done["wro_id"].to_list()) and listed
    assert all(w["status"] == "Completed" for w in listed)
    later = world.table("receiving_orders").filter(pl.col("created_at") > t2)
    assert not {w["id"] for w in shipbob.walk("receiving", Limit=250)[0]} & set(later["wro_id"].to_list())


# ----------------------------------------------------------------------------- writes
def order_body(reference: str, sku: str) -> dict:
    return {
        "reference_id": reference,
        "order_number": reference,
        "type": "DTC",
        "shipping_method": "Standard",
        "recipient": {"name": "Ada Lovelace", "address": {"address1": "1 Main St", "city": "Austin", "state": "TX",
                                                           "country": "US", "zip_code": "78701"}},
        "products": [{"reference_id": sku, "sku": sku, "quantity": 1, "unit_price": 12.5}],
    }


def test_created_orders_are_unique_by_reference_and_visible_in_reads(shipbob, world):
    sku = world.table("variants").filter(~pl.col("is_bundle"))["sku"][0]
    assert shipbob.post("order", order_body("reship-1", sku), channel=None).status_code == 400
    assert shipbob.post("order", order_body("reship-1", sku), channel="1").status_code == 403
    invalid = shipbob.post("order", {"reference_id": "x"})
    assert invalid.status_code == 400 and "products" in invalid.json()
    created = shipbob.post("order", order_body("reship-1", sku))
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "Processing" and order["shipments"][0]["status"] == "Processing"
    assert INSTANT.match(order["created_date"])
    duplicate = shipbob.post("order", order_body("reship-1", sku))
    assert duplicate.status_code == 422
    assert duplicate.json() == {"": ["Cannot insert order with existing ReferenceId"]}
    existing = visible_orders(world, world.now())["channel_order_id"][0]
    assert shipbob.post("order", order_body(existing, sku)).status_code == 422
    assert shipbob.ctx.store.count("shipbob", "order") == 1
    assert shipbob.get(f"order/{order['id']}").json() == order
    assert [o["id"] for o in shipbob.get("order", ReferenceIds="reship-1").json()] == [order["id"]]
    changed = shipbob.get("order", LastUpdateStartDate=stamp(world.now() - timedelta(seconds=1)), Limit=250).json()
    assert order["id"] in {o["id"] for o in changed}
    assert shipbob.get(f"shipment/{order['shipments'][0]['id']}").status_code == 200


def test_created_receiving_orders_are_unique_by_po_number(shipbob, world):
    variant = world.table("variants").filter(~pl.col("is_bundle")).row(0, named=True)
    centers = shipbob.get("fulfillment-center").json()
    assert centers and {"id", "name", "timezone"} <= set(centers[0])
    body = {
        "fulfillment_center": {"id": centers[0]["id"]},
        "package_type": "Package",
        "box_packaging_type": "EverythingInOneBox",
        "expected_arrival_date": stamp(world.now() + timedelta(days=20)),
        "purchase_order_number": "PO-TEST-0001",
        "boxes": [{"tracking_number": "1Z999", "box_items": [{"inventory_id": variant["shipbob_inventory_id"], "quantity": 24}]}],
    }
    assert shipbob.post("receiving", body, channel=None).status_code == 400
    unknown_center = shipbob.post("receiving", {**body, "fulfillment_center": {"id": -5}})
    assert unknown_center.status_code == 400 and "fulfillment_center.id" in unknown_center.json()
    created = shipbob.post("receiving", body)
    assert created.status_code == 201, created.text
    wro = created.json()
    assert wro["status"] == "Awaiting"
    assert wro["inventory_quantities"] == [{"inventory_id": variant["shipbob_inventory_id"], "sku": variant["sku"],
                                            "expected_quantity": 24, "received_quantity": 0, "stowed_quantity": 0}]
    duplicate = shipbob.post("receiving", body)
    assert duplicate.status_code == 422 and "purchase_order_number" in duplicate.json()
    assert shipbob.ctx.store.count("shipbob", "receiving") == 1
    assert shipbob.get(f"receiving/{wro['id']}").json() == wro
    assert [w["id"] for w in shipbob.get("receiving", PurchaseOrderNumbers="PO-TEST-0001").json()] == [wro["id"]]
    world_po = world.table("receiving_orders").filter(pl.col("created_at") <= world.now())["po_number"]
    if world_po.len():
        assert shipbob.post("receiving", {**body, "purchase_order_number": world_po[0]}).status_code == 422


# ----------------------------------------------------------------------------- rate limit and record faults
def test_rate_limit_answers_429_with_retry_headers(world):
    # scale < 1 stretches the 60 s window, so the burst surely falls inside one window
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=0.1), sources=("shipbob",)) as (base, app):
        client = ShipBobClient(base, app.state.ctx)
        answers = [client.get("channel") for _ in range(153)]
        ok = [a for a in answers if a.status_code == 200]
        limited = [a for a in answers if a.status_code == 429]
        assert len(ok) == 150 and len(limited) == 3
        assert [int(a.headers["x-remaining-calls"]) for a in ok[:3]] == [149, 148, 147]
        assert ok[-1].headers["x-remaining-calls"] == "0"
        body = limited[0].json()
        assert body["statusCode"] == 429
        seconds = int(limited[0].headers["x-retry-after"])
        assert seconds >= 1 and body["message"] == f"Rate limit is exceeded. Try again in {seconds} seconds."
        assert limited[0].headers["x-remaining-calls"] == "0"
        client.http.close()


def test_record_faults_apply_to_list_pages(world):
    from connectors.sandbox.emulators.faults import FaultConfig

    faults = FaultConfig.from_mapping({"seed": 3, "shipbob": {"rate_extra_field": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("shipbob",)) as (base, app):
        client = ShipBobClient(base, app.state.ctx)
        page = client.get("order", Limit=5).json()
        assert page and all(o.get("sandbox_undocumented_field") == "injected" for o in page)
        client.http.close()


def test_injected_throttles_and_server_errors_speak_shipbob(world):
    from connectors.sandbox.emulators.faults import FaultConfig

    faults = FaultConfig.from_mapping({"seed": 1, "shipbob": {"rate_429": 1.0, "retry_after_seconds": 2.5}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("shipbob",)) as (base, app):
        client = ShipBobClient(base, app.state.ctx)
        answer = client.get("order")
        assert answer.status_code == 429 and answer.headers["x-retry-after"] == "3"
        assert answer.json() == {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 3 seconds."}
        app.state.ctx.faults["shipbob"].reconfigure(FaultConfig.from_mapping({"shipbob": {"rate_5xx": 1.0}}))
        failed = client.get("order")
        assert failed.status_code in (500, 502, 503) and "message" in failed.json()
        client.http.close()
