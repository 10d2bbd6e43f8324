"""The NetSuite SuiteTalk REST emulator over real HTTP: auth, record collections, q filters,
expanded records, SuiteQL, writes (upsert, async idempotency) and concurrency governance."""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import polars as pl
import pytest

from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from tests.conftest import serve

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORDS = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture
def netsuite(world):
    """(base url of /netsuite, world, credentials) with throttling off."""
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("netsuite",)) as (base, app):
        yield f"{base}/netsuite", world, app.state.ctx.credentials


def token_for(client: httpx.Client, base: str, creds: SandboxCredentials) -> str:
    response = client.post(base + TOKEN_PATH, data={"grant_type": "client_credentials"},
                           auth=(creds.netsuite_client_id, creds.netsuite_client_secret))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def api(netsuite, http):
    """An httpx client carrying a bearer token, plus the base url and world."""
    base, world, creds = netsuite
    http.headers["Authorization"] = f"Bearer {token_for(http, base, creds)}"
    return http, base, world


def walk(client: httpx.Client, base: str, record_type: str, **params) -> tuple[list[str], list[dict]]:
    """Follow a record collection page by page: every id and every page body."""
    ids, pages = [], []
    response = client.get(f"{base}{RECORDS}/{record_type}", params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        ids += [item["id"] for item in page["items"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not page["hasMore"]:
            assert not nxt
            return ids, pages
        response = client.get(nxt[0])


def suiteql(client: httpx.Client, base: str, query: str, **params) -> httpx.Response:
    return client.post(base + SUITEQL, params=params, headers={"Prefer": "transient"}, json={"q": query})


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) >= {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == response.status_code
    return body["o:errorDetails"][0]["o:errorCode"]


# ---------------------------------------------------------------- auth
def test_token_flow_and_login_errors(netsuite, http):
    base, world, creds = netsuite
    good = http.post(base + TOKEN_PATH, data={"grant_type": "client_credentials"},
                     auth=(creds.netsuite_client_id, creds.netsuite_client_secret))
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["access_token"]

    wrong = http.post(base + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(creds.netsuite_client_id, "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert http.post(base + TOKEN_PATH, data={"grant_type": "password"},
                     auth=(creds.netsuite_client_id, creds.netsuite_client_secret)).json()["error"] == "unsupported_grant_type"

    # refresh_token grant: the sandbox's own refresh token is accepted, a made-up one is not
    from connectors.sandbox.emulators.netsuite import sandbox_refresh_token
    refreshed = http.post(base + TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": sandbox_refresh_token(creds)},
                          auth=(creds.netsuite_client_id, creds.netsuite_client_secret))
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]
    bad_refresh = http.post(base + TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": "x"},
                            auth=(creds.netsuite_client_id, creds.netsuite_client_secret))
    assert bad_refresh.status_code == 400 and bad_refresh.json()["error"] == "invalid_grant"

    # the M2M form: a JWT client assertion (signature not checked, claims are)
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": creds.netsuite_client_id, "scope": ["rest_webservices"], "aud": base + TOKEN_PATH, "iat": now, "exp": now + 600}
    assertion = f"{b64({'typ': 'JWT', 'alg': 'PS256', 'kid': 'cert-1'})}.{b64(claims)}.c2ln"
    m2m = http.post(base + TOKEN_PATH, data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    })
    assert m2m.status_code == 200 and m2m.json()["token_type"] == "bearer"
    stranger = f"{b64({'typ': 'JWT', 'alg': 'PS256', 'kid': 'cert-1'})}.{b64(dict(claims, iss='someone-else'))}.c2ln"
    assert http.post(base + TOKEN_PATH, data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": stranger,
    }).status_code in (400, 401)

    # API calls: no token, a forged token and an expired token all get INVALID_LOGIN
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic abc"}):
        response = http.get(f"{base}{RECORDS}/invoice", headers=headers)
        assert response.status_code == 401
        assert error_code(response) == "INVALID_LOGIN"
    from connectors.sandbox.emulators.netsuite import NetSuiteAccount
    signer = NetSuiteAccount.__new__(NetSuiteAccount)
    signer.creds = creds
    expired = signer._sign({"typ": "access", "acct": creds.netsuite_account_id, "iat": now - 7200, "exp": now - 3600})
    response = http.get(f"{base}{RECORDS}/invoice", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and error_code(response) == "INVALID_LOGIN"
    ok = http.get(f"{base}{RECORDS}/invoice", params={"limit": 1}, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert ok.status_code == 200


# ---------------------------------------------------------------- collections
def test_collection_paging_walks_every_invoice_once(api):
    client, base, world = api
    ids, pages = walk(client, base, "invoice", limit=700)
    total = pages[0]["totalResults"]
    assert len(pages) > 1
    assert len(ids) == total == len(set(ids))
    expected = world.table("invoices").filter(pl.col("created_at") <= world.now())["netsuite_id"].sort().to_list()
    assert [int(i) for i in ids] == expected
    first, last = pages[0], pages[-1]
    assert {link["rel"] for link in first["links"]} == {"next", "last", "self"}
    assert {link["rel"] for link in last["links"]} == {"first", "prev", "self"}
    middle = {link["rel"]: link["href"] for link in pages[1]["links"]}
    assert set(middle) == {"first", "prev", "next", "last", "self"} and "offset=0" in middle["prev"]
    assert first["count"] == 700 and first["offset"] == 0 and first["hasMore"] is True
    item = first["items"][0]
    assert set(item) == {"links", "id"} and item["links"][0]["rel"] == "self"
    assert item["links"][0]["href"].endswith(f"/record/v1/invoice/{item['id']}")
    # the lower-case alias serves the same collection; limit is capped at 1000
    assert client.get(f"{base}{RECORDS}/salesOrder", params={"limit": 5}).json()["items"] == \
        client.get(f"{base}{RECORDS}/salesorder", params={"limit": 5}).json()["items"]
    too_big = client.get(f"{base}{RECORDS}/invoice", params={"limit": 1001})
    assert too_big.status_code == 400 and error_code(too_big) == "INVALID_PARAMETER"
    assert client.get(f"{base}{RECORDS}/notARecord").status_code == 404


def test_incremental_filter_after_clock_advance(api):
    client, base, world = api
    before = world.now().replace(microsecond=0)
    stamp = before.strftime("%Y-%m-%dT%H:%M:%SZ")
    initial_ids, _ = walk(client, base, "invoice", q=f'lastModifiedDate AFTER "{stamp}"')
    assert initial_ids == []  # nothing is modified after the clock
    after = world.set_clock(before + timedelta(days=3))
    changed_ids, pages = walk(client, base, "invoice", q=f'lastModifiedDate AFTER "{stamp}"')
    assert changed_ids and pages[0]["totalResults"] == len(changed_ids)
    # invoices that existed before the advance and changed since (paid, credited, voided) come back
    existed = set(world.table("invoices").filter(pl.col("created_at") <= before)["netsuite_id"].cast(pl.String).to_list())
    assert existed & set(changed_ids)
    for record_id in changed_ids[:25]:
        record = client.get(f"{base}{RECORDS}/invoice/{record_id}").json()
        modified = datetime.fromisoformat(record["lastModifiedDate"].replace("Z", "+00:00"))
        assert before < modified <= after
    # a date without a time compares whole days (MM/DD/YYYY and YYYY-MM-DD alike)
    day_us = client.get(f"{base}{RECORDS}/invoice", params={"q": f'lastModifiedDate ON_OR_AFTER "{before:%m/%d/%Y}"', "limit": 1}).json()
    day_iso = client.get(f"{base}{RECORDS}/invoice", params={"q": f'lastModifiedDate ON_OR_AFTER "{before:%Y-%m-%d}"', "limit": 1}).json()
    assert day_us["totalResults"] == day_iso["totalResults"] >= len(changed_ids)


def test_q_grammar_and_errors(api):
    client, base, world = api

    def total(q: str) -> int:
        response = client.get(f"{base}{RECORDS}/invoice", params={"q": q, "limit": 1})
        assert response.status_code == 200, response.text
        return response.json()["totalResults"]

    everything = total("id GREATER 0")
    paid, open_ = total('status IS "Paid In Full"'), total("status IS Open")
    assert total('(status IS "Paid In Full" OR status IS "Open") AND id GREATER 0') == paid + open_
    assert total('status ANY_OF ["Paid In Full", "Open"]') == paid + open_
    assert total('status IS_NOT "Open"') == everything - open_
    first = client.get(f"{base}{RECORDS}/invoice", params={"limit": 3}).json()["items"]
    low, high = int(first[0]["id"]), int(first[2]["id"])
    assert total(f"id BETWEEN [{low}, {high}]") == 3
    assert total(f"id ANY_OF [{low}, {high}]") == 2
    number = client.get(f"{base}{RECORDS}/invoice/{low}").json()["tranId"]
    assert total(f'tranId IS "{number}"') == 1
    assert total(f'tranId START_WITH "{number[:4]}"') == everything
    assert total("memo EMPTY") == everything
    for bad in ('lastModifiedDate AFTER', 'lastModifiedDate SOON "01/01/2026"', '(status IS Open', 'status IS Open AND',
                'noSuchField IS 1', 'lastModifiedDate AFTER "31/31/2026"', 'total CONTAIN 5', 'status IS Open OR OR'):
        response = client.get(f"{base}{RECORDS}/invoice", params={"q": bad})
        assert response.status_code == 400, bad
        assert error_code(response) == "INVALID_PARAMETER"
        assert response.json()["o:errorDetails"][0]["o:errorQueryParam"] == "q"
    unparseable = client.get(f"{base}{RECORDS}/invoice", params={"q": 'lastModifiedDate AFTER "13/45/2026"'})
    assert "Unparseable date" in unparseable.json()["o:errorDetails"][0]["detail"]


# ---------------------------------------------------------------- single records
def test_expanded_records_shape_and_formats(api):
    client, base, world = api
    invoices = world.table("invoices").filter(pl.col("created_at") <= world.now())
    row = invoices.row(0, named=True)
    record = client.get(f"{base}{RECORDS}/invoice/{row['netsuite_id']}", params={"expandSubResources": "true"}).json()
    assert record["id"] == str(row["netsuite_id"]) and record["tranId"] == row["invoice_number"]
    assert DAY.match(record["tranDate"]) and INSTANT.match(record["createdDate"]) and INSTANT.match(record["lastModifiedDate"])
    assert record["total"] == row["total_cents"] / 100 and isinstance(record["total"], (int, float))
    assert record["otherRefNum"] == row["channel_order_id"]
    assert set(record["status"]) == {"id", "refName"} and record["status"]["refName"] in ("Open", "Paid In Full", "Voided")
    assert {"id", "refName", "links"} <= set(record["entity"])
    lines = record["item"]["items"]
    assert record["item"]["totalResults"] == len(lines) == world.table("invoice_lines").filter(pl.col("invoice_uuid") == row["invoice_uuid"]).height
    for line in lines:
        assert {"line", "item", "quantity", "rate", "amount"} <= set(line)
        assert {"id", "refName"} <= set(line["item"])
        assert all(isinstance(line[k], (int, float)) for k in ("quantity", "rate", "amount"))
    # createdFrom points at a sales order that resolves
    sales_order = client.get(record["createdFrom"]["links"][0]["href"], params={"expandSubResources": "true"})
    assert sales_order.status_code == 200
    so = sales_order.json()
    assert so["otherRefNum"] == row["channel_order_id"] and so["item"]["items"]
    assert so["orderStatus"]["id"] in ("A", "B", "C", "D", "E", "F", "G", "H")
    # without expandSubResources a sublist is only a link
    plain = client.get(f"{base}{RECORDS}/invoice/{row['netsuite_id']}").json()
    assert set(plain["item"]) == {"links"}
    # an item fulfillment carries its sales order and the package tracking number
    shipped = world.table("shipments").filter(pl.col("shipped_at") <= world.now())
    fulfillment_id = client.get(f"{base}{RECORDS}/itemFulfillment", params={"limit": 1}).json()["items"][0]["id"]
    fulfillment = client.get(f"{base}{RECORDS}/itemfulfillment/{fulfillment_id}", params={"expandSubResources": "true"}).json()
    assert fulfillment["createdFrom"]["links"][0]["href"].split("/")[-2] == "salesorder"
    tracking = fulfillment["package"]["items"][0]["packageTrackingNumber"]
    assert tracking in set(shipped["tracking_number"].to_list())
    # every other record type answers too, and a missing id is a NetSuite 404
    for record_type in ("creditMemo", "customerPayment", "deposit", "purchaseOrder", "customer", "vendor", "inventoryItem"):
        page = client.get(f"{base}{RECORDS}/{record_type}", params={"limit": 2}).json()
        assert page["totalResults"] > 0, record_type
        one = client.get(page["items"][0]["links"][0]["href"], params={"expandSubResources": "true"})
        assert one.status_code == 200 and INSTANT.match(one.json()["lastModifiedDate"])
    missing = client.get(f"{base}{RECORDS}/invoice/1")
    assert missing.status_code == 404 and error_code(missing) == "NONEXISTENT_ID"


# ---------------------------------------------------------------- SuiteQL
def test_suiteql_paging_order_and_errors(api):
    client, base, world = api
    query = "SELECT t.id, t.tranid, t.foreigntotal, t.trandate, BUILTIN.DF(t.status) AS status_name FROM transaction t WHERE t.type = 'CustInvc' ORDER BY t.id DESC"
    ids, offset, total = [], 0, None
    while True:
        response = suiteql(client, base, query, limit=1000, offset=offset)
        assert response.status_code == 200, response.text
        page = response.json()
        total = page["totalResults"]
        ids += [item["id"] for item in page["items"]]
        if not page["hasMore"]:
            break
        offset += page["count"]
    records_total = client.get(f"{base}{RECORDS}/invoice", params={"limit": 1}).json()["totalResults"]
    assert total == records_total == len(ids) == len(set(ids))
    assert [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True)
    item = page["items"][0]
    assert item["links"] == [] and all(isinstance(v, str) for k, v in item.items() if k != "links")
    assert re.match(r"^\d{1,2}/\d{1,2}/\d{4}$", item["trandate"])
    assert item["status_name"].startswith("Invoice : ")
    # Oracle-isms: TO_DATE, TO_CHAR, ROWNUM; the clock bounds what exists
    now = world.now()
    limited = suiteql(client, base, "SELECT id, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lm FROM transaction "
                      "WHERE lastmodifieddate >= TO_DATE('2020-01-01', 'YYYY-MM-DD') AND ROWNUM <= 7").json()
    assert limited["count"] == 7
    latest = suiteql(client, base, "SELECT TO_CHAR(MAX(lastmodifieddate), 'YYYY-MM-DD HH24:MI:SS') AS m FROM transaction").json()["items"][0]["m"]
    assert datetime.fromisoformat(latest).replace(tzinfo=timezone.utc) <= now
    lines = suiteql(client, base, "SELECT tl.transaction, tl.item, tl.quantity FROM transactionline tl JOIN transaction t ON t.id = tl.transaction "
                    "WHERE t.type = 'PurchOrd' AND tl.mainline = 'F' ORDER BY tl.transaction, tl.linesequencenumber").json()
    assert lines["count"] == world.table("po_lines").join(
        world.table("purchase_orders").filter(pl.col("ordered_at") <= now).select("po_id"), on="po_id").height
    # errors: a bad query, a write, no Prefer: transient
    bad = suiteql(client, base, "SELECT nothing FROM nowhere")
    assert bad.status_code == 400 and error_code(bad) == "INVALID_PARAMETER"
    assert suiteql(client, base, "DELETE FROM transaction").status_code == 400
    assert suiteql(client, base, "SELECT * FROM read_csv('/etc/passwd')").status_code == 400
    no_prefer = client.post(base + SUITEQL, json={"q": "SELECT id FROM transaction"})
    assert no_prefer.status_code == 400


# ---------------------------------------------------------------- writes
def test_external_id_upsert_makes_one_record(api):
    client, base, world = api
    vendor = client.get(f"{base}{RECORDS}/vendor", params={"limit": 1}).json()["items"][0]["id"]
    item = client.get(f"{base}{RECORDS}/inventoryItem", params={"limit": 1}).json()["items"][0]["id"]
    before = client.get(f"{base}{RECORDS}/purchaseOrder", params={"limit": 1}).json()["totalResults"]
    body = {"entity": {"id": vendor}, "memo": "closeloop replenishment",
            "item": {"items": [{"item": {"id": item}, "quantity": 48, "rate": 7.5}]}}
    first = client.put(f"{base}{RECORDS}/purchaseOrder/eid:CL-PO-0001", json=body)
    second = client.put(f"{base}{RECORDS}/purchaseOrder/eid:CL-PO-0001", json=dict(body, memo="updated"))
    assert first.status_code == second.status_code == 204
    assert first.headers["Location"] == second.headers["Location"]
    assert client.get(f"{base}{RECORDS}/purchaseOrder", params={"limit": 1}).json()["totalResults"] == before + 1
    record = client.get(f"{base}{RECORDS}/purchaseOrder/eid:CL-PO-0001", params={"expandSubResources": "true"}).json()
    assert record["externalId"] == "CL-PO-0001" and record["memo"] == "updated" and record["total"] == 360.0
    assert record["status"]["refName"] == "Pending Receipt" and record["entity"]["refName"]
    assert record["item"]["items"][0]["amount"] == 360.0
    assert record["lastModifiedDate"] == world.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    # a second POST with the same externalId is refused, PATCH updates in place
    assert client.post(f"{base}{RECORDS}/purchaseOrder", json=dict(body, externalId="CL-PO-0001")).status_code == 400
    patched = client.patch(first.headers["Location"], json={"memo": "patched"})
    assert patched.status_code == 204
    assert client.get(first.headers["Location"]).json()["memo"] == "patched"
    # missing vendor: NetSuite's user error
    refused = client.put(f"{base}{RECORDS}/purchaseOrder/eid:CL-PO-0002", json={"memo": "no vendor"})
    assert refused.status_code == 400 and error_code(refused) == "USER_ERROR"


def test_created_records_appear_in_later_reads(api):
    client, base, world = api
    stamp = world.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    customer = client.get(f"{base}{RECORDS}/customer", params={"limit": 1}).json()["items"][0]["id"]
    created = client.post(f"{base}{RECORDS}/invoice", json={
        "entity": {"id": customer}, "externalId": "CL-INV-1", "otherRefNum": "CL-ORDER-1",
        "item": {"items": [{"item": {"id": "9001"}, "quantity": 1, "rate": 12.5}]},
    })
    assert created.status_code == 204 and created.content == b""
    location = created.headers["Location"]
    new_id = location.rsplit("/", 1)[1]
    record = client.get(location, params={"expandSubResources": "true"}).json()
    assert record["otherRefNum"] == "CL-ORDER-1" and record["total"] == 12.5 and record["status"]["refName"] == "Open"
    ids, _ = walk(client, base, "invoice", q=f'lastModifiedDate ON_OR_AFTER "{stamp}"')
    assert new_id in ids
    ids, _ = walk(client, base, "invoice", q='externalId IS "CL-INV-1"')
    assert ids == [new_id]
    rows = suiteql(client, base, "SELECT id, otherrefnum, foreigntotal FROM transaction WHERE externalid = 'CL-INV-1'").json()["items"]
    assert rows == [{"links": [], "id": new_id, "otherrefnum": "CL-ORDER-1", "foreigntotal": "12.5"}]
    # a PATCH on a record of the world moves its lastModifiedDate to now
    world_invoice = client.get(f"{base}{RECORDS}/invoice", params={"limit": 1}).json()["items"][0]["id"]
    assert world_invoice not in ids
    assert client.patch(f"{base}{RECORDS}/invoice/{world_invoice}", json={"memo": "disputed"}).status_code == 204
    ids, _ = walk(client, base, "invoice", q=f'lastModifiedDate ON_OR_AFTER "{stamp}"')
    assert world_invoice in ids and new_id in ids
    patched = client.get(f"{base}{RECORDS}/invoice/{world_invoice}", params={"expandSubResources": "true"}).json()
    assert patched["memo"] == "disputed" and patched["lastModifiedDate"] == stamp and patched["item"]["items"]
    # a journal that does not balance is refused
    unbalanced = client.post(f"{base}{RECORDS}/journalEntry", json={"line": {"items": [{"account": {"id": "1"}, "debit": 5}]}})
    assert unbalanced.status_code == 400 and error_code(unbalanced) == "USER_ERROR"


def test_async_write_idempotency(api):
    client, base, world = api
    headers = {"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": "6b4f0a52-1b0e-4c4e-9c55-9b8f3f0c0a11"}
    journal = {"externalId": "CL-JE-1", "memo": "fee accrual",
               "line": {"items": [{"account": {"id": "6100"}, "debit": 42.1}, {"account": {"id": "2000"}, "credit": 42.1}]}}
    accepted = client.post(f"{base}{RECORDS}/journalEntry", json=journal, headers=headers)
    assert accepted.status_code == 202
    assert accepted.headers["Preference-Applied"] == "respond-async"
    job_url = accepted.headers["Location"]
    assert re.search(r"/services/rest/async/v1/job/\d+$", job_url)
    duplicate = client.post(f"{base}{RECORDS}/journalEntry", json=journal, headers=headers)
    assert duplicate.status_code == 400 and error_code(duplicate) == "IDEMPOTENCY_ERROR"
    assert duplicate.headers["Location"] == job_url
    job = client.get(job_url).json()
    assert job["completed"] is True and job["progress"] == "succeeded"
    tasks = client.get(job["task"]["links"][0]["href"]).json()
    task = client.get(tasks["items"][0]["links"][0]["href"]).json()
    result = client.get([l["href"] for l in task["links"] if l["rel"] == "related"][0])
    assert result.status_code == 204
    journals, _ = walk(client, base, "journalEntry")
    assert journals == [result.headers["Location"].rsplit("/", 1)[1]]
    entry = client.get(result.headers["Location"], params={"expandSubResources": "true"}).json()
    assert entry["line"]["totalResults"] == 2 and entry["total"] == 42.1
    # a new key is a new job
    again = client.post(f"{base}{RECORDS}/journalEntry", json=dict(journal, externalId="CL-JE-2"),
                        headers={**headers, "X-NetSuite-Idempotency-Key": "another"})
    assert again.status_code == 202 and again.headers["Location"] != job_url


# ---------------------------------------------------------------- governance and faults
def test_concurrency_limit_answers_429(world):
    with serve(world, throttle=ThrottleSettings(enabled=True), sources=("netsuite",)) as (base, app):
        base = f"{base}/netsuite"
        creds = app.state.ctx.credentials
        with httpx.Client(timeout=30) as client:
            token = token_for(client, base, creds)
        headers = {"Authorization": f"Bearer {token}", "Prefer": "transient", "Content-Type": "application/json"}
        release = threading.Event()
        held_results: list[int] = []

        def slow_body():
            # the request is in progress (inside the gate) until its body is complete
            yield b'{"q": "SELECT id FROM '
            release.wait(20)
            yield b'transaction"}'

        def held_request():
            with httpx.Client(timeout=30) as c:
                held_results.append(c.post(base + SUITEQL, headers=headers, content=slow_body()).status_code)

        threads = [threading.Thread(target=held_request) for _ in range(5)]
        for t in threads:
            t.start()
        # wait until the five are inside the account's gate (a probe sent earlier would take a slot)
        account = next(route.app.app.state.netsuite for route in app.routes if route.path == "/netsuite")
        deadline = time.monotonic() + 15
        while account.gate.active < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        with httpx.Client(timeout=30) as client:
            refused = client.post(base + SUITEQL, headers=headers, json={"q": "SELECT id FROM transaction"})
            release.set()
            for t in threads:
                t.join(30)
            assert refused.status_code == 429, "a sixth concurrent request must be refused"
            assert refused.headers["Retry-After"]
            assert error_code(refused) == "CONCURRENCY_LIMIT_EXCEEDED"
            assert held_results == [200] * 5
            assert client.post(base + SUITEQL, headers=headers, json={"q": "SELECT id FROM transaction"}).status_code == 200


def test_throttle_and_server_error_shapes_and_record_faults(world):
    from connectors.sandbox.emulators import netsuite

    throttled = netsuite.throttled(2.0)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert json.loads(throttled.body)["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    failed = netsuite.server_error(503)
    assert failed.status_code == 503 and json.loads(failed.body)["status"] == 503
    faults = FaultConfig.from_mapping({"seed": 3, "netsuite": {"rate_repeat": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("netsuite",)) as (base, app):
        with httpx.Client(timeout=30) as client:
            token = token_for(client, f"{base}/netsuite", app.state.ctx.credentials)
            page = client.get(f"{base}/netsuite{RECORDS}/invoice", params={"limit": 50},
                              headers={"Authorization": f"Bearer {token}"}).json()
    ids = [item["id"] for item in page["items"]]
    assert len(ids) == 51 and len(set(ids)) == 50
