"""The Amazon SP-API emulator over real HTTP: LWA, Orders 2026-01-01, Reports 2021-06-30."""
from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta

import httpx
import jsonschema
import polars as pl
import pytest

from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from tests.conftest import serve

ORDERS = "/orders/2026-01-01/orders"
REPORTS = "/reports/2021-06-30/reports"
DOCUMENTS = "/reports/2021-06-30/documents"
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
EVERYTHING = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"
LONG_AGO = "2000-01-01T00:00:00Z"

SETTLEMENT_COLUMNS = [
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id", "marketplace-name",
    "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date", "posted-date-time",
    "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
    "promotion-id",
]


# ---------------------------------------------------------------------- helpers
class AmazonSandbox:
    """A live sandbox serving only /amazon, with an LWA access token in hand."""

    def __init__(self, base: str, app, world):
        self.base = base
        self.app = app
        self.world = world
        self.ctx = app.state.ctx
        self.http = httpx.Client(base_url=f"{base}/amazon", timeout=30)
        self.token = self.exchange().json()["access_token"]

    def exchange(self, **overrides) -> httpx.Response:
        """POST the LWA refresh-token grant, with any form field overridden."""
        c = self.ctx.credentials
        form = {
            "grant_type": "refresh_token",
            "refresh_token": c.amazon_refresh_token,
            "client_id": c.amazon_lwa_client_id,
            "client_secret": c.amazon_lwa_client_secret,
            **overrides,
        }
        return self.http.post("/auth/o2/token", data=form)

    def get(self, path: str, params=None, token: str | None = "default", **headers) -> httpx.Response:
        """GET an SP-API path with the access token (or another token, or none)."""
        if token == "default":
            token = self.token
        if token is not None:
            headers["x-amz-access-token"] = token
        return self.http.get(path, params=params, headers=headers)

    @property
    def amazon_app(self):
        """The emulator's own Starlette app (its token table and URL signer sit on its state)."""
        return emulator_app(self.app)

    def walk_orders(self, params: dict, validator=None) -> tuple[list[dict], dict]:
        """Every order of a searchOrders walk, and the last page's body."""
        orders, token = [], None
        while True:
            page_params = dict(params, **({"paginationToken": token} if token else {}))
            response = self.get(ORDERS, page_params)
            assert response.status_code == 200, response.text
            body = response.json()
            if validator is not None:
                validator.validate(body)
            orders += body["orders"]
            token = body.get("pagination", {}).get("nextToken")
            if not token:
                return orders, body


def emulator_app(app):
    """The Amazon emulator's Starlette app, under the /amazon mount and the fault middleware."""
    mount = next(r for r in app.routes if getattr(r, "path", None) == "/amazon")
    return mount.app.app


def model_validator(specs_dir, spec_file: str, definition: str) -> jsonschema.Draft4Validator:
    """A validator for one Swagger 2.0 definition, its $refs resolved within the model file."""
    spec = json.loads((specs_dir / spec_file).read_text())
    schema = {"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def instant(text: str) -> datetime:
    """An SP-API time string as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def view_of(now: datetime) -> datetime:
    """What the Orders API shows: the clock minus the 2-minute delay, in whole seconds."""
    return (now - timedelta(minutes=2)).replace(microsecond=0)


def amazon_orders(world) -> pl.DataFrame:
    """The world's Amazon orders."""
    return world.table("orders").filter(pl.col("channel") == "amazon")


def seconds(col: str) -> pl.Expr:
    """A time column truncated to whole seconds, as the API reports times."""
    return pl.col(col).dt.truncate("1s")


def expected_states(world, view: datetime) -> dict[str, str]:
    """orderId -> fulfillment status as of ``view``, straight from the world."""
    at = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
    frame = amazon_orders(world).filter(seconds("created_at") <= at).select(
        "channel_order_id",
        pl.when(seconds("cancelled_at") <= at).then(pl.lit("CANCELLED"))
        .when(seconds("amazon_shipped_at") <= at).then(pl.lit("SHIPPED"))
        .otherwise(pl.lit("UNSHIPPED")).alias("status"),
    )
    return dict(frame.iter_rows())


def updated_between(world, start: datetime, end: datetime) -> set[str]:
    """Amazon orders with any event (creation, shipment, cancellation, refund, line) in [start, end]."""
    orders = amazon_orders(world)
    lo = pl.lit(start, dtype=pl.Datetime("us", "UTC"))
    hi = pl.lit(end, dtype=pl.Datetime("us", "UTC"))
    inside = lambda col: (seconds(col) >= lo) & (seconds(col) <= hi)  # noqa: E731
    events = [
        orders.filter(inside("created_at") | inside("amazon_shipped_at") | inside("cancelled_at")).select("order_key"),
        world.table("refunds").filter(inside("created_at")).select("order_key"),
        world.table("order_lines").filter(inside("added_at")).select("order_key"),
    ]
    keys = pl.concat(events).unique()
    live = orders.filter(seconds("created_at") <= hi)
    return set(live.join(keys, on="order_key", how="semi")["channel_order_id"].to_list())


@pytest.fixture
def amazon(world):
    """A live sandbox serving /amazon only, throttling off."""
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("amazon",)) as (base, app):
        sandbox = AmazonSandbox(base, app, world)
        yield sandbox
        sandbox.http.close()


# ---------------------------------------------------------------------- LWA and access
def test_lwa_exchanges_the_refresh_token_for_an_access_token(amazon):
    response = amazon.exchange()
    assert response.status_code == 200
    assert response.headers["x-amzn-RequestId"]
    body = response.json()
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == amazon.ctx.credentials.amazon_refresh_token

    bad_client = amazon.exchange(client_secret="not-the-secret")
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    assert bad_client.json()["error_description"]

    bad_grant = amazon.exchange(refresh_token="Atzr|revoked")
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "invalid_grant"

    wrong_type = amazon.exchange(grant_type="password")
    assert wrong_type.status_code == 400
    assert wrong_type.json()["error"] == "unsupported_grant_type"


def test_api_calls_need_a_live_access_token(amazon):
    params = {"createdAfter": LONG_AGO, "maxResultsPerPage": 1}

    def denial(response: httpx.Response) -> str:
        assert response.status_code == 403
        assert response.headers["x-amzn-RequestId"]
        (error,) = response.json()["errors"]
        assert error["code"] == "Unauthorized"
        assert error["message"] == "Access to requested resource is denied."
        return error["details"]

    assert denial(amazon.get(ORDERS, params, token=None)) == "Access token is missing in the request header."
    assert "revoked, malformed or invalid" in denial(amazon.get(ORDERS, params, token="Atza|forged"))
    assert denial(amazon.get(REPORTS, {"reportTypes": SETTLEMENT}, token=None))

    # SigV4 headers are no longer required and are ignored when sent
    signed = amazon.get(
        ORDERS, params, authorization="AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/execute-api/aws4_request",
        **{"x-amz-date": "20260101T000000Z"},
    )
    assert signed.status_code == 200

    amazon.amazon_app.state.lwa_tokens.expires_at[amazon.token] = time.time() - 1
    assert denial(amazon.get(ORDERS, params)) == "The access token you provided has expired."


# ---------------------------------------------------------------------- orders
def test_search_orders_walks_every_visible_order_once_and_matches_the_world(amazon, specs_dir):
    validator = model_validator(specs_dir, "orders_2026-01-01.json", "SearchOrdersResponse")
    now = amazon.ctx.now()
    orders, last = amazon.walk_orders(
        {"createdAfter": LONG_AGO, "maxResultsPerPage": 100, "includedData": EVERYTHING}, validator
    )
    ids = [o["orderId"] for o in orders]
    assert len(ids) == len(set(ids)), "an order came back twice"
    view = view_of(now)
    expected = expected_states(amazon.world, view)
    assert expected, "the small world should have Amazon orders before the clock"
    assert set(ids) == set(expected)
    assert instant(last["createdBefore"]) == view
    assert {o["orderId"]: o["fulfillment"]["fulfillmentStatus"] for o in orders} == expected

    created = [o["createdTime"] for o in orders]
    assert created == sorted(created)
    world_orders = {r["channel_order_id"]: r for r in amazon_orders(amazon.world).iter_rows(named=True)}
    lines = amazon.world.table("order_lines")
    for order in orders:
        row = world_orders[order["orderId"]]
        assert instant(order["lastUpdatedTime"]) <= view  # nothing after the clock leaks
        assert instant(order["createdTime"]) <= instant(order["lastUpdatedTime"])
        assert order["proceeds"]["grandTotal"] == {
            "amount": f"{row['total_cents'] / 100:.2f}", "currencyCode": row["currency"]
        }
        assert order["fulfillment"]["fulfilledBy"] == ("AMAZON" if row["fulfillment_channel"] == "AFN" else "MERCHANT")
        assert order["salesChannel"]["marketplaceId"] == "ATVPDKIKX0DER"
    sample = orders[len(orders) // 2]
    sample_lines = lines.filter(pl.col("order_key") == world_orders[sample["orderId"]]["order_key"])
    assert {i["orderItemId"] for i in sample["orderItems"]} == set(sample_lines["amazon_order_item_id"].to_list())
    assert sum(i["quantityOrdered"] for i in sample["orderItems"]) == sample_lines["quantity"].sum()


def test_a_walk_keeps_its_snapshot_when_the_clock_moves_mid_walk(amazon):
    start_view = view_of(amazon.ctx.now())
    params = {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": 100}
    first = amazon.get(ORDERS, params).json()
    amazon.world.set_clock(amazon.ctx.now() + timedelta(days=1))
    rest, last = amazon.walk_orders(dict(params, paginationToken=first["pagination"]["nextToken"]))
    ids = [o["orderId"] for o in first["orders"] + rest]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(expected_states(amazon.world, start_view))
    assert instant(last["lastUpdatedBefore"]) == start_view


def test_last_updated_after_a_clock_advance_returns_what_changed(amazon, specs_dir):
    validator = model_validator(specs_dir, "orders_2026-01-01.json", "SearchOrdersResponse")
    first = amazon.get(ORDERS, {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": 1})
    assert first.status_code == 200
    bound = instant(first.json()["lastUpdatedBefore"])
    assert bound == view_of(amazon.ctx.now())

    later = amazon.world.set_clock(amazon.ctx.now() + timedelta(days=2))
    orders, last = amazon.walk_orders(
        {"lastUpdatedAfter": bound.isoformat().replace("+00:00", "Z"), "includedData": "FULFILLMENT"}, validator
    )
    view = view_of(later)
    assert instant(last["lastUpdatedBefore"]) == view
    ids = [o["orderId"] for o in orders]
    assert len(ids) == len(set(ids))
    assert set(ids) == updated_between(amazon.world, bound, view)
    for order in orders:
        assert bound <= instant(order["lastUpdatedTime"]) <= view

    at_lo = pl.lit(bound, dtype=pl.Datetime("us", "UTC"))
    at_hi = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
    shipped = set(
        amazon_orders(amazon.world)
        .filter((seconds("amazon_shipped_at") > at_lo) & (seconds("amazon_shipped_at") <= at_hi))
        .filter(pl.col("cancelled_at").is_null() | (seconds("cancelled_at") > at_hi))["channel_order_id"].to_list()
    )
    assert shipped, "two days of the small world should ship some Amazon orders"
    statuses = {o["orderId"]: o["fulfillment"]["fulfillmentStatus"] for o in orders}
    assert all(statuses[order_id] == "SHIPPED" for order_id in shipped)

    shipped_only = amazon.walk_orders(
        {"lastUpdatedAfter": bound.isoformat(), "fulfillmentStatuses": "SHIPPED", "includedData": "FULFILLMENT"}
    )[0]
    assert {o["orderId"] for o in shipped_only} == {k for k, v in statuses.items() if v == "SHIPPED"}


def test_get_order_renders_one_order_per_the_model(amazon, specs_dir):
    validator = model_validator(specs_dir, "orders_2026-01-01.json", "GetOrderResponse")
    view = view_of(amazon.ctx.now())
    states = expected_states(amazon.world, view)
    for wanted in ("SHIPPED", "UNSHIPPED", "CANCELLED"):
        order_id = next((k for k, v in sorted(states.items()) if v == wanted), None)
        if order_id is None:
            continue
        response = amazon.get(f"{ORDERS}/{order_id}", {"includedData": EVERYTHING})
        assert response.status_code == 200, response.text
        assert response.headers["x-amzn-RateLimit-Limit"] == "0.5"
        body = response.json()
        validator.validate(body)
        assert body["order"]["orderId"] == order_id
        assert body["order"]["fulfillment"]["fulfillmentStatus"] == wanted

    plain = amazon.get(f"{ORDERS}/{next(iter(states))}").json()["order"]
    assert "proceeds" not in plain and "fulfillment" not in plain  # datasets come only when asked

    merchant_shipped = (
        amazon_orders(amazon.world)
        .filter((pl.col("fulfillment_channel") == "MFN") & (pl.col("amazon_shipped_at") <= view))
        .join(amazon.world.table("shipments").select("order_key", "tracking_number"), on="order_key")
        .sort("order_key")
    )
    if merchant_shipped.height:
        row = merchant_shipped.row(0, named=True)
        body = amazon.get(f"{ORDERS}/{row['channel_order_id']}", {"includedData": "PACKAGES"}).json()
        validator.validate(body)
        assert row["tracking_number"] in {p["trackingNumber"] for p in body["order"]["packages"]}

    missing = amazon.get(f"{ORDERS}/999-0000000-0000000")
    assert missing.status_code == 404
    model_validator(specs_dir, "orders_2026-01-01.json", "ErrorList").validate(missing.json())
    future = amazon_orders(amazon.world).filter(pl.col("created_at") > amazon.ctx.now())
    if future.height:
        assert amazon.get(f"{ORDERS}/{future['channel_order_id'][0]}").status_code == 404


def test_orders_appear_and_change_two_minutes_after_the_fact(amazon):
    now = amazon.ctx.now()
    row = (
        amazon_orders(amazon.world)
        .filter((pl.col("created_at") > now) & pl.col("amazon_shipped_at").is_not_null() & pl.col("cancelled_at").is_null())
        .sort("created_at")
        .row(0, named=True)
    )
    path = f"{ORDERS}/{row['channel_order_id']}"
    params = {"includedData": "FULFILLMENT"}

    amazon.world.set_clock(row["created_at"] + timedelta(minutes=1))
    assert amazon.get(path, params).status_code == 404  # placed, not yet visible
    amazon.world.set_clock(row["created_at"] + timedelta(minutes=3))
    placed = amazon.get(path, params).json()["order"]
    assert placed["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert instant(placed["lastUpdatedTime"]) == row["created_at"].replace(microsecond=0)

    amazon.world.set_clock(row["amazon_shipped_at"] + timedelta(minutes=1))
    assert amazon.get(path, params).json()["order"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    amazon.world.set_clock(row["amazon_shipped_at"] + timedelta(minutes=3))
    shipped = amazon.get(path, params).json()["order"]
    assert shipped["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert instant(shipped["lastUpdatedTime"]) == row["amazon_shipped_at"].replace(microsecond=0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"createdAfter": LONG_AGO, "lastUpdatedAfter": LONG_AGO},
        {"createdAfter": LONG_AGO, "lastUpdatedBefore": "2001-01-01T00:00:00Z"},
        {"lastUpdatedAfter": LONG_AGO, "createdBefore": "2001-01-01T00:00:00Z"},
        {"createdAfter": "2001-01-01T00:00:00Z", "createdBefore": LONG_AGO},
        {"createdAfter": "last tuesday"},
        {"createdAfter": LONG_AGO, "maxResultsPerPage": 0},
        {"createdAfter": LONG_AGO, "maxResultsPerPage": 101},
        {"createdAfter": LONG_AGO, "maxResultsPerPage": "ten"},
        {"createdAfter": LONG_AGO, "fulfillmentStatuses": "SHIPPED,LOST"},
        {"createdAfter": LONG_AGO, "fulfilledBy": "SELLER"},
        {"createdAfter": LONG_AGO, "includedData": "EVERYTHING"},
        {"createdAfter": LONG_AGO, "paginationToken": "not-a-token"},
    ],
)
def test_search_orders_rejects_bad_parameters(amazon, specs_dir, params):
    response = amazon.get(ORDERS, params)
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    body = response.json()
    model_validator(specs_dir, "orders_2026-01-01.json", "ErrorList").validate(body)
    assert body["errors"][0]["code"] == "InvalidInput"


def test_search_orders_bounds_must_trail_the_clock_and_tokens_keep_their_filters(amazon):
    now = amazon.ctx.now()
    too_recent = (now - timedelta(seconds=30)).isoformat()
    response = amazon.get(ORDERS, {"createdAfter": LONG_AGO, "createdBefore": too_recent})
    assert response.status_code == 400

    first = amazon.get(ORDERS, {"createdAfter": LONG_AGO, "maxResultsPerPage": 1}).json()
    token = first["pagination"]["nextToken"]
    changed = amazon.get(ORDERS, {"createdAfter": "2001-01-01T00:00:00Z", "paginationToken": token})
    assert changed.status_code == 400
    # maxResultsPerPage and includedData may change between pages
    same = amazon.get(
        ORDERS, {"createdAfter": LONG_AGO, "paginationToken": token, "maxResultsPerPage": 2, "includedData": "BUYER"}
    )
    assert same.status_code == 200
    assert first["orders"][0]["orderId"] not in {o["orderId"] for o in same.json()["orders"]}


# ---------------------------------------------------------------------- reports
def visible_settlements(world, now: datetime, since: datetime) -> pl.DataFrame:
    """Settlements whose report was created in [since, now]."""
    at = pl.lit(now, dtype=pl.Datetime("us", "UTC"))
    lo = pl.lit(since, dtype=pl.Datetime("us", "UTC"))
    return world.table("settlements").filter((pl.col("report_created_at") <= at) & (pl.col("report_created_at") >= lo))


def test_get_reports_pages_with_next_token_alone(amazon, specs_dir):
    list_validator = model_validator(specs_dir, "reports_2021-06-30.json", "GetReportsResponse")
    report_validator = model_validator(specs_dir, "reports_2021-06-30.json", "Report")
    now = amazon.ctx.now()

    default_window = amazon.get(REPORTS, {"reportTypes": SETTLEMENT, "pageSize": 100})
    assert default_window.status_code == 200
    assert default_window.headers["x-amzn-RateLimit-Limit"] == "0.0222"
    expected_recent = visible_settlements(amazon.world, now, now - timedelta(days=90))
    assert {r["reportId"] for r in default_window.json()["reports"]} == set(expected_recent["report_id"].to_list())

    reports, params = [], {"reportTypes": SETTLEMENT, "pageSize": 2, "createdSince": LONG_AGO}
    while True:
        response = amazon.get(REPORTS, params)
        assert response.status_code == 200, response.text
        body = response.json()
        list_validator.validate(body)
        reports += body["reports"]
        if "nextToken" not in body:
            break
        params = {"nextToken": body["nextToken"]}
    expected = visible_settlements(amazon.world, now, instant(LONG_AGO))
    assert expected.height, "the small world should have settlement reports before the clock"
    ids = [r["reportId"] for r in reports]
    assert len(ids) == len(set(ids)) == expected.height
    assert set(ids) == set(expected["report_id"].to_list())
    assert [r["createdTime"] for r in reports] == sorted((r["createdTime"] for r in reports), reverse=True)
    assert all(r["processingStatus"] == "DONE" and r["reportType"] == SETTLEMENT for r in reports)

    one = amazon.get(f"{REPORTS}/{ids[0]}")
    assert one.status_code == 200
    assert one.headers["x-amzn-RateLimit-Limit"] == "2"
    report_validator.validate(one.json())
    assert one.json() == reports[0]

    future = amazon.world.table("settlements").filter(pl.col("report_created_at") > now)
    if future.height:
        assert future["report_id"][0] not in ids
        assert amazon.get(f"{REPORTS}/{future['report_id'][0]}").status_code == 404
    assert amazon.get(f"{REPORTS}/0").status_code == 404
    assert amazon.get(REPORTS, {"reportTypes": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"}).json() == {"reports": []}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"reportTypes": SETTLEMENT, "nextToken": "abc"},
        {"pageSize": 5, "nextToken": "abc"},
        {"reportTypes": SETTLEMENT, "pageSize": 0},
        {"reportTypes": SETTLEMENT, "pageSize": 101},
        {"reportTypes": SETTLEMENT, "processingStatuses": "FINISHED"},
        {"reportTypes": SETTLEMENT, "createdSince": "yesterday"},
        {"nextToken": "%%%"},
    ],
)
def test_get_reports_rejects_bad_parameters(amazon, params):
    response = amazon.get(REPORTS, params)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_settlement_reports_cannot_be_requested(amazon):
    response = amazon.http.post(
        REPORTS,
        json={"reportType": SETTLEMENT, "marketplaceIds": ["ATVPDKIKX0DER"]},
        headers={"x-amz-access-token": amazon.token},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "InvalidInput", "message": "Request for report type 1118 is not allowed at this time", "details": ""
    }
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0167"


def parse_flat_file(text: str) -> list[list[str]]:
    """The tab-delimited rows of a flat file."""
    return list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


def cents(text: str) -> int:
    """A flat-file amount ("-3.22") as integer cents, insisting on two decimals."""
    sign = -1 if text.startswith("-") else 1
    whole, _, part = text.lstrip("-").partition(".")
    assert len(part) == 2, f"amount {text!r} should have two decimals"
    return sign * (int(whole) * 100 + int(part))


def test_settlement_documents_parse_and_balance(amazon, specs_dir):
    validator = model_validator(specs_dir, "reports_2021-06-30.json", "ReportDocument")
    now = amazon.ctx.now()
    settlements = visible_settlements(amazon.world, now, instant(LONG_AGO))
    assert settlements.height
    world_lines = amazon.world.table("settlement_lines")
    for settlement in settlements.iter_rows(named=True):
        response = amazon.get(f"{DOCUMENTS}/{settlement['report_document_id']}")
        assert response.status_code == 200, response.text
        assert response.headers["x-amzn-RateLimit-Limit"] == "0.0167"
        document = response.json()
        validator.validate(document)
        assert document["reportDocumentId"] == settlement["report_document_id"]
        assert "/amazon/_sandbox/documents/" in document["url"]
        download = httpx.get(document["url"], timeout=30)
        assert download.status_code == 200
        text = download.text
        if document.get("compressionAlgorithm") == "GZIP":  # pragma: no cover - the emulator serves plain text
            import gzip

            text = gzip.decompress(download.content).decode()
        rows = parse_flat_file(text)
        header, summary, lines = rows[0], rows[1], rows[2:]
        assert header == SETTLEMENT_COLUMNS
        assert all(len(row) == 24 for row in rows)
        assert summary[0] == str(settlement["settlement_id"])
        assert summary[1] == settlement["start_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
        assert summary[3] == settlement["deposit_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
        assert summary[5] == settlement["currency"]
        assert all(cell == "" for cell in summary[6:])
        expected_lines = world_lines.filter(pl.col("settlement_id") == settlement["settlement_id"]).sort("line_no")
        assert len(lines) == expected_lines.height
        amount = SETTLEMENT_COLUMNS.index("amount")
        assert sum(cents(row[amount]) for row in lines) == cents(summary[4]) == settlement["total_cents"]
        assert [cents(row[amount]) for row in lines] == expected_lines["amount_cents"].to_list()
        assert all(row[0] == summary[0] and row[1:6] == [""] * 5 for row in lines)
        posted = SETTLEMENT_COLUMNS.index("posted-date-time")
        assert all(row[posted].endswith(" UTC") for row in lines if row[posted])
    assert amazon.get(f"{DOCUMENTS}/amzn1.spdoc.1.4.na.unknown").status_code == 404


def test_expired_or_tampered_document_urls_are_refused(amazon):
    settlement = visible_settlements(amazon.world, amazon.ctx.now(), instant(LONG_AGO)).row(0, named=True)
    document_id = settlement["report_document_id"]
    signer = amazon.amazon_app.state.document_signer

    fresh = httpx.get(signer.url(document_id, issued_at=time.time() - 200), timeout=30)
    assert fresh.status_code == 200

    expired = httpx.get(signer.url(document_id, issued_at=time.time() - 301), timeout=30)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "Request has expired" in expired.text

    tampered = signer.url(document_id)[:-4] + "0000"
    refused = httpx.get(tampered, timeout=30)
    assert refused.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in refused.text


# ---------------------------------------------------------------------- limits and faults
def test_a_burst_beyond_the_usage_plan_gets_quota_exceeded(world):
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=1.0), sources=("amazon",)) as (base, app):
        sandbox = AmazonSandbox(base, app, world)
        params = {"createdAfter": LONG_AGO, "maxResultsPerPage": 1}
        # searchOrders: burst 20, refilled at 0.0056/s, so the 21st call in a row is refused
        statuses = [sandbox.get(ORDERS, params).status_code for _ in range(21)]
        assert statuses[:20] == [200] * 20
        assert statuses[20] == 429
        refused = sandbox.get(ORDERS, params)
        assert refused.status_code == 429
        assert refused.headers["x-amzn-RateLimit-Limit"] == "0.0056"
        assert refused.headers["x-amzn-RequestId"]
        assert refused.json() == {
            "errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""}]
        }
        # buckets are per operation: reports are still admitted
        assert sandbox.get(REPORTS, {"reportTypes": SETTLEMENT}).status_code == 200
        sandbox.http.close()


def test_record_faults_repeat_orders_on_search_pages(world):
    faults = FaultConfig.from_mapping({"amazon": {"rate_repeat": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("amazon",)) as (base, app):
        sandbox = AmazonSandbox(base, app, world)
        body = sandbox.get(ORDERS, {"createdAfter": LONG_AGO, "maxResultsPerPage": 5}).json()
        ids = [o["orderId"] for o in body["orders"]]
        assert len(ids) == 6 and len(set(ids)) == 5
        sandbox.http.close()


def test_injected_server_errors_spare_document_downloads(world, specs_dir):
    faults = FaultConfig.from_mapping({"amazon": {"rate_5xx": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("amazon",)) as (base, app):
        failed = httpx.get(f"{base}/amazon{ORDERS}", params={"createdAfter": LONG_AGO}, timeout=30)
        assert failed.status_code in (500, 502, 503)
        assert failed.headers["x-amzn-RequestId"]
        model_validator(specs_dir, "orders_2026-01-01.json", "ErrorList").validate(failed.json())
        # the presigned download stands for S3, not the API: no API faults there
        document_id = visible_settlements(world, world.now(), instant(LONG_AGO))["report_document_id"][0]
        download = httpx.get(emulator_app(app).state.document_signer.url(document_id), timeout=30)
        assert download.status_code == 200
        assert download.text.startswith("settlement-id\t")


def test_injected_throttles_and_server_errors_speak_sp_api(specs_dir):
    from connectors.sandbox.emulators import amazon

    validator = model_validator(specs_dir, "orders_2026-01-01.json", "ErrorList")
    throttled = amazon.throttled(1.0)
    assert throttled.status_code == 429
    assert json.loads(throttled.body)["errors"][0]["code"] == "QuotaExceeded"
    validator.validate(json.loads(throttled.body))
    failed = amazon.server_error(500)
    assert failed.status_code == 500
    assert json.loads(failed.body)["errors"][0]["code"] == "InternalFailure"
    validator.validate(json.loads(failed.body))
