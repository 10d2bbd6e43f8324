"""The Shopify Admin GraphQL emulator over real HTTP on 127.0.0.1, against the generated small world."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import httpx
import polars as pl
import pytest

from connectors.sandbox.emulators import shopify
from connectors.sandbox.emulators.throttle import ThrottleSettings
from tests.conftest import serve

API = "/shopify/admin/api/2026-07/graphql.json"
MONEY = re.compile(r"^-?\d+\.\d{2}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ORDER_PAGE = """
query($after: String, $query: String, $sortKey: OrderSortKeys) {
  orders(first: 100, after: $after, query: $query, sortKey: $sortKey) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id legacyResourceId name createdAt updatedAt } }
  }
}
"""


class ShopifyClient:
    """A minimal GraphQL client for the emulator (what a connector would send)."""

    def __init__(self, base: str, token: str):
        self.url = base + API
        self.base = base
        self.http = httpx.Client(timeout=30, headers={"X-Shopify-Access-Token": token})

    def post(self, query: str, variables: dict | None = None) -> httpx.Response:
        return self.http.post(self.url, json={"query": query, "variables": variables or {}})

    def data(self, query: str, variables: dict | None = None) -> dict:
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def all_orders(self, query: str | None = None, sort_key: str = "ID") -> list[dict]:
        nodes, after, seen_last = [], None, False
        while not seen_last:
            page = self.data(ORDER_PAGE, {"after": after, "query": query, "sortKey": sort_key})["orders"]
            nodes += [edge["node"] for edge in page["edges"]]
            after = page["pageInfo"]["endCursor"]
            seen_last = not page["pageInfo"]["hasNextPage"]
        return nodes


@pytest.fixture
def shop(world):
    """The Shopify emulator alone (other sources need not exist), throttling off."""
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("shopify",)) as (base, app):
        ctx = app.state.ctx
        yield ShopifyClient(base, ctx.credentials.shopify_access_token), ctx


def shopify_orders_at(world, now: datetime) -> pl.DataFrame:
    return world.table("orders").filter((pl.col("channel") == "shopify") & (pl.col("created_at") <= now))


def walk(value, visit):
    """Call visit(key, value) on every key of a nested JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            visit(key, inner)
            walk(inner, visit)
    elif isinstance(value, list):
        for inner in value:
            walk(inner, visit)


# ---------------------------------------------------------------- auth, validation, cost


def test_missing_or_wrong_token_gets_the_real_401(shop):
    client, _ = shop
    for headers in ({}, {"X-Shopify-Access-Token": "shpat_wrong"}):
        response = httpx.post(client.url, json={"query": "{ shop { name } }"}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_unknown_field_and_argument_get_graphql_validation_errors(shop):
    client, _ = shop
    body = client.post("{ orders(first: 1) { nodes { id fooBar } } }").json()
    error = body["errors"][0]
    assert error["message"] == "Field 'fooBar' doesn't exist on type 'Order'"
    assert error["extensions"]["code"] == "undefinedField"
    assert error["locations"] == [{"line": 1, "column": 33}]
    assert "data" not in body and "cost" in body["extensions"]

    body = client.post("{ orders(first: 1, since: 3) { nodes { id } } }").json()
    assert body["errors"][0]["extensions"]["code"] == "argumentNotAccepted"

    body = client.post("{ orders(first: 300) { nodes { id } } }").json()
    assert body["data"] is None and "250" in body["errors"][0]["message"]


def test_every_response_carries_the_cost_block(shop):
    client, _ = shop
    bodies = [
        client.post("{ shop { name currencyCode ianaTimezone } }").json(),
        client.post("{ orders(first: 10) { nodes { id } } }").json(),
        client.post("{ nope }").json(),
    ]
    for body in bodies:
        cost = body["extensions"]["cost"]
        assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
        assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
        assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert bodies[0]["data"]["shop"] == {"name": "Closeloop Sandbox", "currencyCode": "USD", "ianaTimezone": "America/New_York"}
    # connection: 2 + first x (one Order object)
    assert bodies[1]["extensions"]["cost"]["requestedQueryCost"] == 12


def test_a_query_over_1000_points_is_refused_before_running(shop):
    client, _ = shop
    response = client.post("{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }")
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 + 250 * (1 + 2 + 250)
    assert body.get("data") is None


def test_a_burst_of_expensive_queries_is_throttled_with_200_and_the_cost_block(world):
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=1.0), sources=("shopify",)) as (base, app):
        client = ShopifyClient(base, app.state.ctx.credentials.shopify_access_token)
        query = "{ orders(first: 90) { nodes { id lineItems(first: 8) { nodes { id } } } } }"
        bodies = []
        for _ in range(12):
            response = client.post(query)
            assert response.status_code == 200
            bodies.append(response.json())
            if "errors" in bodies[-1]:
                break
        throttled = bodies[-1]
        assert throttled["errors"] == [
            {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}
        ]
        assert throttled.get("data") is None
        cost = throttled["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 2 + 90 * (1 + 2 + 8)
        assert cost["actualQueryCost"] is None
        assert cost["throttleStatus"]["currentlyAvailable"] < cost["requestedQueryCost"]
        # admitted queries were refunded down to what they actually returned
        first = bodies[0]["extensions"]["cost"]
        assert first["actualQueryCost"] < first["requestedQueryCost"]


def test_throttled_and_server_error_answers_have_shopify_shapes():
    response = shopify.throttled(2.0)
    body = json.loads(response.body)
    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    status = body["extensions"]["cost"]["throttleStatus"]
    assert (body["extensions"]["cost"]["requestedQueryCost"] - status["currentlyAvailable"]) / status["restoreRate"] == 2.0
    error = shopify.server_error(503)
    assert error.status_code == 503 and "errors" in json.loads(error.body)


# ---------------------------------------------------------------- listing orders


def test_pagination_walks_every_order_exactly_once(shop, world):
    client, _ = shop
    nodes = client.all_orders()
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids))
    expected = shopify_orders_at(world, world.now())
    assert len(ids) == expected.height
    assert {int(n["legacyResourceId"]) for n in nodes} == set(expected["channel_order_id"].cast(pl.Int64).to_list())
    # ID order is ascending, and walking backwards with last/before gives the same records
    assert [int(i) for i in (n["legacyResourceId"] for n in nodes)] == sorted(int(n["legacyResourceId"]) for n in nodes)
    tail = client.data(
        "query($before: String) { orders(last: 5, before: $before, sortKey: ID) { pageInfo { hasPreviousPage hasNextPage } nodes { id } } }",
        {"before": None},
    )["orders"]
    assert [n["id"] for n in tail["nodes"]] == ids[-5:]
    assert tail["pageInfo"]["hasPreviousPage"] and not tail["pageInfo"]["hasNextPage"]


def test_updated_at_filter_returns_orders_changed_after_a_clock_advance(shop, world):
    client, _ = shop
    before = world.now()
    stamp = before.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.all_orders(f"updated_at:>'{stamp}'") == []

    after = world.set_clock(before + timedelta(days=2))
    changed = client.all_orders(f"updated_at:>'{stamp}'", sort_key="UPDATED_AT")
    assert changed
    updated = [n["updatedAt"] for n in changed]
    assert updated == sorted(updated)
    assert all(stamp < u <= after.strftime("%Y-%m-%dT%H:%M:%SZ") for u in updated)
    ids = {int(n["legacyResourceId"]) for n in changed}

    orders = shopify_orders_at(world, after)
    new = orders.filter(pl.col("created_at") > before)["channel_order_id"].cast(pl.Int64).to_list()
    assert new and set(new) <= ids
    # older orders come back when a fulfillment (a shipment with a Shopify id) happens in the window
    shipped = (
        world.table("shipments")
        .filter(pl.col("shopify_fulfillment_id").is_not_null() & (pl.col("shipped_at") > before) & (pl.col("shipped_at") <= after))
        .join(orders.filter(pl.col("created_at") <= before), on="order_key")["channel_order_id"]
        .cast(pl.Int64)
        .to_list()
    )
    assert shipped and set(shipped) <= ids
    # and a bounded window: created_at comparisons combine with AND
    window = client.all_orders(f"created_at:>'{stamp}' AND created_at:<='{after.strftime('%Y-%m-%dT%H:%M:%SZ')}'")
    assert {int(n["legacyResourceId"]) for n in window} == set(new)


def test_money_dates_and_ids_use_shopify_formats(shop, world):
    client, _ = shop
    data = client.data(
        """{ orders(first: 25, query: "financial_status:partially_refunded") { nodes {
             id legacyResourceId name createdAt updatedAt processedAt currencyCode presentmentCurrencyCode
             displayFinancialStatus displayFulfillmentStatus
             totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
             totalRefundedSet { shopMoney { amount } }
             lineItems(first: 5) { nodes { id sku originalUnitPriceSet { shopMoney { amount } } } }
             refunds { createdAt totalRefundedSet { shopMoney { amount } } }
             transactions { kind status processedAt amountSet { shopMoney { amount } } }
        } } }"""
    )
    orders = data["orders"]["nodes"]
    assert orders
    amounts, instants = [], []

    def visit(key, value):
        if key == "amount":
            amounts.append(value)
        if key in ("createdAt", "updatedAt", "processedAt"):
            instants.append(value)

    walk(orders, visit)
    assert amounts and all(isinstance(a, str) and MONEY.match(a) for a in amounts)
    assert instants and all(INSTANT.match(i) for i in instants)
    world_orders = world.table("orders").filter(pl.col("channel") == "shopify")
    for order in orders:
        assert order["id"] == f"gid://shopify/Order/{order['legacyResourceId']}"
        assert order["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
        assert {t["kind"] for t in order["transactions"]} <= {"SALE", "REFUND"}
        row = world_orders.filter(pl.col("channel_order_id") == order["legacyResourceId"]).row(0, named=True)
        assert order["name"] == row["order_name"]
        assert order["createdAt"] == row["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        shop_money = order["totalPriceSet"]["shopMoney"]
        assert shop_money["currencyCode"] == "USD"
        assert order["totalPriceSet"]["presentmentMoney"]["currencyCode"] == row["presentment_currency"]
        if order["lineItems"]["nodes"] and len(order["lineItems"]["nodes"]) == 1:
            pass
        refunded = sum(round(float(r["totalRefundedSet"]["shopMoney"]["amount"]) * 100) for r in order["refunds"])
        assert refunded == round(float(order["totalRefundedSet"]["shopMoney"]["amount"]) * 100) > 0


def test_nothing_after_the_clock_leaks(shop, world):
    client, _ = shop
    now = world.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = client.data(
        """{ orders(first: 60, sortKey: UPDATED_AT, reverse: true) { nodes {
             createdAt updatedAt closedAt cancelledAt
             refunds { createdAt } transactions { processedAt }
             fulfillments { createdAt updatedAt deliveredAt fulfillmentLineItems(first: 5) { nodes { quantity } } }
           } }
           shopifyPaymentsAccount {
             payouts(first: 50, sortKey: ISSUED_AT, reverse: true) { nodes { issuedAt status } }
             balanceTransactions(first: 100, sortKey: PROCESSED_AT, reverse: true) {
               nodes { transactionDate associatedPayout { id status } } }
           } }"""
    )
    instants = []
    walk(data, lambda k, v: instants.append(v) if k in ("createdAt", "updatedAt", "closedAt", "cancelledAt", "processedAt",
                                                          "deliveredAt", "issuedAt", "transactionDate") and v else None)
    assert instants and max(instants) <= stamp
    # balance transactions not yet in a payout say so; assigned ones point at a payout that exists
    payouts = world.table("payouts")
    for bt in data["shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]:
        payout = bt["associatedPayout"]
        if payout["id"] is None:
            assert payout["status"] == "PENDING"
        else:
            payout_id = int(payout["id"].rsplit("/", 1)[1])
            assert payouts.filter(pl.col("payout_id") == payout_id)["created_at"].item() <= now
    # an order created after the clock cannot be read
    later = world.table("orders").filter((pl.col("channel") == "shopify") & (pl.col("created_at") > now)).row(0, named=True)
    found = client.data("query($id: ID!) { order(id: $id) { id } }", {"id": f"gid://shopify/Order/{later['channel_order_id']}"})
    assert found["order"] is None
    # payouts: PAID once paid_at passed, SCHEDULED before
    listed = client.all_orders()
    assert all(o["createdAt"] <= stamp for o in listed)
    for node in data["shopifyPaymentsAccount"]["payouts"]["nodes"]:
        assert node["status"] in ("PAID", "SCHEDULED")


def test_payouts_and_balance_transactions_follow_the_clock(shop, world):
    client, _ = shop
    now = world.now()
    payouts = world.table("payouts").filter(pl.col("created_at") <= now)
    listed, after = [], None
    while True:
        page = client.data(
            "query($after: String) { shopifyPaymentsAccount { payouts(first: 50, after: $after) { pageInfo { hasNextPage endCursor } nodes { legacyResourceId status net { amount } } } } }",
            {"after": after},
        )["shopifyPaymentsAccount"]["payouts"]
        listed += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(listed) == payouts.height
    for node in listed:
        row = payouts.filter(pl.col("payout_id") == int(node["legacyResourceId"])).row(0, named=True)
        assert node["status"] == ("PAID" if row["paid_at"] <= now else "SCHEDULED")
        assert round(float(node["net"]["amount"]) * 100) == row["amount_cents"]

    since = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = client.data(
        'query($q: String) { shopifyPaymentsAccount { balanceTransactions(first: 250, query: $q) { nodes { id transactionDate type } } } }',
        {"q": f"processed_at:>='{since}'"},
    )["shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]
    expected = world.table("balance_transactions").filter(
        (pl.col("processed_at") <= now) & (pl.col("processed_at") >= now - timedelta(days=3))
    )
    assert len(recent) == min(250, expected.height)
    assert all(since <= n["transactionDate"] for n in recent)


def test_inventory_levels_are_yesterdays_close(shop, world):
    client, _ = shop
    now = world.now()
    daily = world.table("inventory_daily").filter(pl.col("date") < now.date())
    last = daily.filter(pl.col("date") == daily["date"].max())
    items = client.data(
        """{ inventoryItems(first: 50) { nodes { sku tracked inventoryLevels(first: 1) { nodes {
               location { id name } quantities(names: ["available", "on_hand"]) { name quantity } } } } } }"""
    )["inventoryItems"]["nodes"]
    checked = 0
    for item in items:
        levels = item["inventoryLevels"]["nodes"]
        row = last.filter(pl.col("sku") == item["sku"])
        if row.is_empty():
            assert levels == []
            continue
        quantities = {q["name"]: q["quantity"] for q in levels[0]["quantities"]}
        assert quantities == {"available": row["shopify_available"].item(), "on_hand": row["on_hand"].item()}
        checked += 1
    assert checked > 0


def test_a_bundle_line_is_fulfilled_through_its_components(shop, world):
    client, _ = shop
    now = world.now()
    bundles = world.table("bundle_components")["bundle_sku"].unique().to_list()
    lines = world.table("order_lines").filter(pl.col("sku").is_in(bundles))
    shipped = world.table("shipments").filter(pl.col("shopify_fulfillment_id").is_not_null() & (pl.col("shipped_at") <= now))
    candidates = (
        shopify_orders_at(world, now).join(lines.select("order_key", "sku"), on="order_key").join(shipped.select("order_key"), on="order_key")
    )
    if candidates.is_empty():
        pytest.skip("the small world has no fulfilled bundle order yet")
    row = candidates.row(0, named=True)
    order = client.data(
        "query($id: ID!) { order(id: $id) { fulfillments { fulfillmentLineItems(first: 10) { nodes { quantity lineItem { sku } } } } } }",
        {"id": f"gid://shopify/Order/{row['channel_order_id']}"},
    )["order"]
    skus = {f["lineItem"]["sku"] for ful in order["fulfillments"] for f in ful["fulfillmentLineItems"]["nodes"]}
    assert row["sku"] in skus


# ---------------------------------------------------------------- bulk operations

RUN = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status createdAt } userErrors { field message code } } }"
POLL = """query($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query type } } }"""


def wait_for_bulk(client: ShopifyClient, op_id: str) -> dict:
    seen = []
    for _ in range(600):
        node = client.data(POLL, {"id": op_id})["node"]
        seen.append(node["status"])
        if node["status"] in ("COMPLETED", "FAILED", "CANCELED"):
            return node | {"seen": seen}
        time.sleep(0.05)
    raise AssertionError(f"bulk operation never finished: {seen[-5:]}")


def test_bulk_query_runs_to_a_jsonl_file_with_parent_links(shop, world):
    client, _ = shop
    inner = """{ orders(query: "created_at:>='2026-10-15T00:00:00Z'") { edges { node {
        id name updatedAt totalPriceSet { shopMoney { amount } }
        lineItems { edges { node { id sku quantity } } } } } } }"""
    started = client.data(RUN, {"q": inner})["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    assert started["bulkOperation"]["id"].startswith("gid://shopify/BulkOperation/")

    done = wait_for_bulk(client, started["bulkOperation"]["id"])
    assert done["seen"][0] == "RUNNING"
    assert done["status"] == "COMPLETED" and done["type"] == "QUERY" and done["errorCode"] is None
    assert done["url"].startswith(client.base + "/shopify/_sandbox/bulk-results/")
    assert isinstance(done["objectCount"], str) and isinstance(done["fileSize"], str)

    with httpx.stream("GET", done["url"], timeout=30) as response:
        assert response.status_code == 200
        raw = b"".join(response.iter_bytes())
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(lines) == int(done["objectCount"]) and len(raw) == int(done["fileSize"])
    roots = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    assert len(roots) == int(done["rootObjectCount"])
    seen_roots = set()
    for line in lines:
        if "__parentId" in line:
            assert line["__parentId"] in seen_roots  # a child follows its parent
            assert line["id"].startswith("gid://shopify/LineItem/")
        else:
            seen_roots.add(line["id"])
            assert "lineItems" not in line
    assert children
    paginated = client.all_orders("created_at:>='2026-10-15T00:00:00Z'")
    assert {r["id"] for r in roots} == {n["id"] for n in paginated}
    assert len(roots) == len(paginated)

    current = client.data("{ currentBulkOperation { id status url } }")["currentBulkOperation"]
    assert current["id"] == done["id"] and current["status"] == "COMPLETED"


def test_only_one_bulk_query_at_a_time_and_limits_are_checked(shop):
    client, _ = shop
    first = client.data(RUN, {"q": "{ products { edges { node { id title } } } }"})["bulkOperationRunQuery"]
    assert first["userErrors"] == []
    second = client.data(RUN, {"q": "{ orders { edges { node { id } } } }"})["bulkOperationRunQuery"]
    assert second["bulkOperation"] is None
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    assert first["bulkOperation"]["id"] in second["userErrors"][0]["message"]
    wait_for_bulk(client, first["bulkOperation"]["id"])

    no_connection = client.data(RUN, {"q": "{ shop { name } }"})["bulkOperationRunQuery"]
    assert no_connection["userErrors"][0]["code"] == "INVALID"
    too_deep = client.data(
        RUN,
        {"q": "{ products { edges { node { id variants { edges { node { id inventoryItem { inventoryLevels { edges { node { id } } } } } } } } } } }"},
    )["bulkOperationRunQuery"]
    assert too_deep["userErrors"] and "nesting depth" in too_deep["userErrors"][0]["message"]
    invalid = client.data(RUN, {"q": "{ orders { edges { node { nope } } } }"})["bulkOperationRunQuery"]
    assert invalid["userErrors"][0]["field"] == ["query"]


# ---------------------------------------------------------------- write-back


def test_tags_add_and_order_update_show_in_later_reads(shop, world):
    client, _ = shop
    order = client.data("{ orders(first: 1, sortKey: CREATED_AT) { nodes { id updatedAt tags note } } }")["orders"]["nodes"][0]
    assert order["tags"] == []
    added = client.data(
        'mutation($id: ID!) { tagsAdd(id: $id, tags: ["closeloop-review", "Late"]) { node { id } userErrors { field message } } }',
        {"id": order["id"]},
    )["tagsAdd"]
    assert added == {"node": {"id": order["id"]}, "userErrors": []}
    updated = client.data(
        'mutation($id: ID!) { orderUpdate(input: {id: $id, note: "checked by closeloop"}) { order { id note tags } userErrors { field message } } }',
        {"id": order["id"]},
    )["orderUpdate"]
    assert updated["userErrors"] == [] and updated["order"]["note"] == "checked by closeloop"

    stamp = world.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    again = client.data("query($id: ID!) { order(id: $id) { tags note updatedAt } }", {"id": order["id"]})["order"]
    assert again == {"tags": ["Late", "closeloop-review"], "note": "checked by closeloop", "updatedAt": stamp}
    changed = client.all_orders(f"updated_at:>='{stamp}'")
    assert order["id"] in {n["id"] for n in changed}
    tagged = client.all_orders("tag:closeloop-review")
    assert [n["id"] for n in tagged] == [order["id"]]

    missing = client.data(
        'mutation { tagsAdd(id: "gid://shopify/Order/1", tags: ["x"]) { node { id } userErrors { field message } } }'
    )["tagsAdd"]
    assert missing["node"] is None and missing["userErrors"][0]["field"] == ["id"]


def test_a_bulk_query_can_be_canceled(shop):
    client, _ = shop
    started = client.data(RUN, {"q": "{ orders { edges { node { id lineItems { edges { node { id } } } } } } }"})["bulkOperationRunQuery"]
    op_id = started["bulkOperation"]["id"]
    canceled = client.data(
        "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } } }",
        {"id": op_id},
    )["bulkOperationCancel"]
    assert canceled == {"bulkOperation": {"id": op_id, "status": "CANCELING"}, "userErrors": []}
    # a run that had already finished reports COMPLETED, as a real cancel racing completion does
    assert wait_for_bulk(client, op_id)["status"] in ("CANCELED", "COMPLETED")
    again = client.data(
        "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { id } userErrors { field message } } }", {"id": op_id}
    )["bulkOperationCancel"]
    assert again["userErrors"][0]["field"] == ["id"]


def test_record_faults_repeat_orders_within_a_page(world):
    from connectors.sandbox.emulators.faults import FaultConfig

    faults = FaultConfig.from_mapping({"seed": 5, "shopify": {"rate_repeat": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("shopify",)) as (base, app):
        client = ShopifyClient(base, app.state.ctx.credentials.shopify_access_token)
        nodes = client.data("{ orders(first: 10) { edges { cursor node { id } } } }")["orders"]["edges"]
        ids = [edge["node"]["id"] for edge in nodes]
        assert len(ids) == 11 and len(set(ids)) == 10
        assert app.state.ctx.faults["shopify"].injected["repeat"] == 1
