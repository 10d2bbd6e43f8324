"""The Xero Accounting API emulator over real HTTP on 127.0.0.1.

Covers the identity token endpoint (client credentials, refresh rotation), auth and tenant
errors, paging, If-Modified-Since after the clock moves, where/order, date and money formats,
validation of every list response against the official OpenAPI spec, writes with
Idempotency-Key, and the per-tenant minute limit.
"""
from __future__ import annotations

import base64
import math
import re
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
import yaml

from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.world import as_of
from tests.conftest import serve

MS_DATE = re.compile(r"^/Date\((-?\d+)\+0000\)/$")
ENVELOPE_DATE = re.compile(r"^/Date\(\d+\)/$")
API = "/xero/api.xro/2.0"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def xero(world):
    """A live sandbox serving only Xero, throttling off: (base_url, ctx, app)."""
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("xero",)) as (base, app):
        yield base, app.state.ctx, app


def basic_auth(ctx, secret: str | None = None) -> dict[str, str]:
    creds = ctx.credentials
    raw = f"{creds.xero_client_id}:{secret if secret is not None else creds.xero_client_secret}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def access_token(http, base, ctx) -> str:
    reply = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx),
                      data={"grant_type": "client_credentials", "scope": "accounting.transactions accounting.contacts"})
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


@pytest.fixture
def api(xero, http):
    """A small client: api.get(path, **kw) / api.put / api.post with a valid token and tenant."""
    base, ctx, app = xero
    headers = {"Authorization": "Bearer " + access_token(http, base, ctx),
               "xero-tenant-id": ctx.credentials.xero_tenant_id, "Accept": "application/json"}

    class Client:
        def __init__(self):
            self.ctx, self.base, self.app, self.headers = ctx, base, app, headers

        def request(self, method, path, headers=None, **kw):
            return http.request(method, f"{base}{API}/{path}", headers={**self.headers, **(headers or {})}, **kw)

        def get(self, path, **kw):
            return self.request("GET", path, **kw)

        def put(self, path, **kw):
            return self.request("PUT", path, **kw)

        def post(self, path, **kw):
            return self.request("POST", path, **kw)

    return Client()


def emulator_of(app):
    """The XeroEmulator instance behind the /xero mount (under the fault middleware)."""
    for route in app.routes:
        if getattr(route, "path", "") == "/xero":
            return route.app.app.state.emulator
    raise AssertionError("no /xero mount")


def ms_to_instant(text: str) -> datetime:
    match = MS_DATE.match(text)
    assert match, text
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)


def walk(api, resource: str, page_size: int = 100, **params) -> tuple[list[dict], list[dict]]:
    """Every record of a paged list and the pagination blocks seen."""
    records, blocks, page = [], [], 1
    while True:
        reply = api.get(resource, params={**params, "page": page, "pageSize": page_size})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        blocks.append(body["pagination"])
        records += body[resource]
        if len(body[resource]) < page_size:
            return records, blocks
        page += 1


def world_invoices_now(ctx) -> pl.DataFrame:
    return as_of(ctx.world.table("invoices"), "created_at", ctx.now())


def invoice_payload(contact_id: str, reference: str = "ORDER-1") -> dict:
    return {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Reference": reference,
        "Date": "2026-01-15", "DueDate": "2026-02-14", "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Missing order", "Quantity": 2, "UnitAmount": 12.5, "AccountCode": "200",
                       "TaxType": "NONE"}],
    }]}


# --------------------------------------------------------------------------- identity
def test_client_credentials_token_and_bad_secret(xero, http):
    base, ctx, _ = xero
    reply = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx),
                      data={"grant_type": "client_credentials", "scope": "accounting.transactions"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["scope"] == "accounting.transactions" and body["access_token"]

    bad = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx, secret="wrong"),
                    data={"grant_type": "client_credentials"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid_client"}
    unsupported = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx), data={"grant_type": "password"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


def test_refresh_token_rotates(xero, http):
    base, ctx, _ = xero
    first = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx),
                      data={"grant_type": "refresh_token", "refresh_token": ctx.credentials.xero_refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()["refresh_token"]
    assert rotated != ctx.credentials.xero_refresh_token and first.json()["expires_in"] == 1800
    # the old refresh token no longer works; the new one does, once
    again = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx),
                      data={"grant_type": "refresh_token", "refresh_token": ctx.credentials.xero_refresh_token})
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}
    second = http.post(f"{base}/xero/connect/token", headers=basic_auth(ctx),
                       data={"grant_type": "refresh_token", "refresh_token": rotated})
    assert second.status_code == 200 and second.json()["refresh_token"] != rotated
    # the access token it returned is accepted by the API
    reply = http.get(f"{base}{API}/Items", headers={"Authorization": "Bearer " + second.json()["access_token"],
                                                    "xero-tenant-id": ctx.credentials.xero_tenant_id})
    assert reply.status_code == 200


def test_unknown_expired_token_and_tenant_errors(xero, http):
    base, ctx, app = xero
    tenant = {"xero-tenant-id": ctx.credentials.xero_tenant_id}
    missing = http.get(f"{base}{API}/Invoices", headers=tenant)
    assert missing.status_code == 401
    assert missing.json()["Title"] == "Unauthorized" and missing.json()["Detail"] == "AuthenticationUnsuccessful"
    unknown = http.get(f"{base}{API}/Invoices", headers={**tenant, "Authorization": "Bearer nope"})
    assert unknown.status_code == 401

    token = access_token(http, base, ctx)
    emulator = emulator_of(app)
    digest = emulator.tokens._digest(token)
    emulator.tokens.access[digest] = datetime.now(timezone.utc).timestamp() - 5  # as if 30 minutes had passed
    expired = http.get(f"{base}{API}/Invoices", headers={**tenant, "Authorization": "Bearer " + token})
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired: ")

    token = access_token(http, base, ctx)
    no_tenant = http.get(f"{base}{API}/Invoices", headers={"Authorization": "Bearer " + token})
    assert no_tenant.status_code == 403
    assert no_tenant.json()["Title"] == "Forbidden" and no_tenant.json()["Status"] == 403
    wrong = http.get(f"{base}{API}/Invoices", headers={"Authorization": "Bearer " + token,
                                                       "xero-tenant-id": str(uuid.uuid4())})
    assert wrong.status_code == 403 and wrong.json()["Detail"] == "AuthenticationUnsuccessful"


# --------------------------------------------------------------------------- reads
def test_paging_walks_every_invoice_once(api):
    expected = world_invoices_now(api.ctx)
    records, blocks = walk(api, "Invoices", page_size=100)
    ids = [r["InvoiceID"] for r in records]
    assert len(ids) == len(set(ids)) == expected.height > 0
    assert set(ids) == set(expected["invoice_uuid"].to_list())
    for number, block in enumerate(blocks, start=1):
        assert block["page"] == number and block["pageSize"] == 100
        assert block["itemCount"] == expected.height
        assert block["pageCount"] == math.ceil(expected.height / 100)
    # paged invoices carry their line items; pageSize is clamped to the documented maximum
    assert all(r["LineItems"] for r in records)
    big = api.get("Invoices", params={"page": 1, "pageSize": 5000}).json()["pagination"]
    assert big["pageSize"] == 1000
    beyond = api.get("Invoices", params={"page": blocks[-1]["pageCount"] + 1}).json()
    assert beyond["Invoices"] == []


def test_if_modified_since_returns_what_changed_after_the_clock_moves(api):
    ctx = api.ctx
    before = ctx.now()
    authorised_then = {r["InvoiceID"] for r in walk(api, "Invoices", Statuses="AUTHORISED")[0]}
    after = ctx.world.set_clock(before + timedelta(days=10))
    assert after > before
    since = before.strftime("%Y-%m-%dT%H:%M:%S")
    changed, _ = walk(api, "Invoices", page_size=100, order="UpdatedDateUTC ASC")
    changed_since = [r for r in changed if ms_to_instant(r["UpdatedDateUTC"]) > before]
    listed = []
    page = 1
    while True:
        body = api.get("Invoices", params={"page": page, "order": "UpdatedDateUTC ASC"},
                       headers={"If-Modified-Since": since}).json()
        listed += body["Invoices"]
        if len(body["Invoices"]) < 100:
            break
        page += 1
    assert {r["InvoiceID"] for r in listed} == {r["InvoiceID"] for r in changed_since}
    assert listed, "ten days of trading must change some invoices"
    stamps = [ms_to_instant(r["UpdatedDateUTC"]) for r in listed]
    assert stamps == sorted(stamps)
    assert all(before < s <= after for s in stamps), "nothing after the clock may leak"
    became_paid = [r for r in listed if r["InvoiceID"] in authorised_then and r["Status"] == "PAID"]
    assert became_paid, "invoices paid in those ten days come back as PAID"
    for invoice in became_paid:
        assert invoice["AmountDue"] == 0 and MS_DATE.match(invoice["FullyPaidOnDate"])


def test_invoice_state_follows_the_clock(api):
    ctx = api.ctx
    invoices = world_invoices_now(ctx)
    payments = as_of(ctx.world.table("payments"), "created_at", ctx.now())
    paid = payments.group_by("invoice_uuid").agg(pl.col("amount_cents").sum().alias("paid"))
    sample = invoices.join(paid, on="invoice_uuid", how="left").head(300)
    by_id = {r["InvoiceID"]: r for r in walk(api, "Invoices", page_size=1000)[0]}
    for row in sample.iter_rows(named=True):
        record = by_id[row["invoice_uuid"]]
        assert record["AmountPaid"] == round((row["paid"] or 0) / 100, 2)
        assert record["Total"] == round(row["total_cents"] / 100, 2)
        assert record["Reference"] == (row["channel_order_id"] or "")
        if row["voided_at"] is not None and row["voided_at"] <= ctx.now():
            assert record["Status"] == "VOIDED"
        assert ms_to_instant(record["UpdatedDateUTC"]) <= ctx.now()


def test_where_order_and_list_parameters(api):
    records = walk(api, "Invoices", page_size=1000)[0]
    paid = api.get("Invoices", params={"page": 1, "pageSize": 1000, "where": 'Status=="PAID"'}).json()
    assert paid["Invoices"] and all(r["Status"] == "PAID" for r in paid["Invoices"])
    assert paid["pagination"]["itemCount"] == sum(r["Status"] == "PAID" for r in records)

    contact = records[0]["Contact"]["ContactID"]
    first_day = ms_to_instant(records[len(records) // 2]["Date"])
    expr = (f'Contact.ContactID==Guid("{contact}") OR (Date >= DateTime({first_day.year},{first_day.month:02d},'
            f'{first_day.day:02d}) AND Total > 0)')
    matched = walk(api, "Invoices", page_size=1000, where=expr)[0]
    want = {r["InvoiceID"] for r in records
            if r["Contact"]["ContactID"] == contact or (ms_to_instant(r["Date"]) >= first_day and r["Total"] > 0)}
    assert {r["InvoiceID"] for r in matched} == want

    prefix = records[0]["InvoiceNumber"][:4]
    starts = api.get("Invoices", params={"page": 1, "where": f'InvoiceNumber.StartsWith("{prefix}")'}).json()
    assert starts["pagination"]["itemCount"] == sum(r["InvoiceNumber"].startswith(prefix) for r in records)

    ordered = api.get("Invoices", params={"page": 1, "order": "InvoiceNumber DESC"}).json()["Invoices"]
    numbers = [r["InvoiceNumber"] for r in ordered]
    assert numbers == sorted((r["InvoiceNumber"] for r in records), key=str.lower, reverse=True)[:100]

    picked = records[:3]
    by_ids = api.get("Invoices", params={"page": 1, "IDs": ",".join(r["InvoiceID"] for r in picked)}).json()
    assert {r["InvoiceID"] for r in by_ids["Invoices"]} == {r["InvoiceID"] for r in picked}
    by_numbers = api.get("Invoices", params={"page": 1, "InvoiceNumbers": picked[0]["InvoiceNumber"]}).json()
    assert [r["InvoiceID"] for r in by_numbers["Invoices"]] == [picked[0]["InvoiceID"]]
    by_contact = walk(api, "Invoices", page_size=1000, ContactIDs=contact)[0]
    assert by_contact and all(r["Contact"]["ContactID"] == contact for r in by_contact)
    assert len(by_contact) == sum(r["Contact"]["ContactID"] == contact for r in records)

    single = api.get(f"Invoices/{picked[1]['InvoiceID']}").json()["Invoices"]
    assert [r["InvoiceID"] for r in single] == [picked[1]["InvoiceID"]]
    assert api.get(f"Invoices/{uuid.uuid4()}").status_code == 404

    for bad in ('Status=="PAID" AND', "NoSuchField==1", 'Status=="PAID" AND (Total>1'):
        reply = api.get("Invoices", params={"page": 1, "where": bad})
        assert reply.status_code == 400, bad
        assert reply.json()["ErrorNumber"] == 16 and reply.json()["Type"] == "QueryParseException"
    assert api.get("Invoices", params={"page": 1, "order": "Nope ASC"}).status_code == 400


def test_purchase_orders_items_and_other_lists(api):
    ctx = api.ctx
    orders = as_of(ctx.world.table("purchase_orders"), "ordered_at", ctx.now())
    listed, _ = walk(api, "PurchaseOrders")
    assert {r["PurchaseOrderID"] for r in listed} == set(orders["xero_uuid"].to_list())
    for record in listed:
        row = orders.filter(pl.col("xero_uuid") == record["PurchaseOrderID"]).row(0, named=True)
        received = row["received_at"] is not None and row["received_at"] <= ctx.now()
        assert record["Status"] == ("BILLED" if received else "AUTHORISED")
    if listed:
        status = listed[0]["Status"]
        only = api.get("PurchaseOrders", params={"page": 1, "pageSize": 1000, "Status": status}).json()["PurchaseOrders"]
        assert only and all(r["Status"] == status for r in only)
        day = listed[0]["DateString"][:10]
        later = api.get("PurchaseOrders", params={"page": 1, "pageSize": 1000, "DateFrom": day}).json()["PurchaseOrders"]
        assert all(r["DateString"][:10] >= day for r in later)
        one = api.get(f"PurchaseOrders/{listed[0]['PurchaseOrderNumber']}").json()["PurchaseOrders"]
        assert one[0]["PurchaseOrderID"] == listed[0]["PurchaseOrderID"]

    items = api.get("Items").json()
    assert "pagination" not in items
    variants = as_of(ctx.world.table("variants"), "created_at", ctx.now())
    assert {i["Code"] for i in items["Items"]} == set(variants["sku"].to_list())
    item = items["Items"][0]
    row = variants.filter(pl.col("sku") == item["Code"]).row(0, named=True)
    assert item["SalesDetails"]["UnitPrice"] == round(row["price_cents"] / 100, 2)
    assert item["PurchaseDetails"]["UnitPrice"] == round(row["unit_cost_cents"] / 100, 2)

    contacts, _ = walk(api, "Contacts")
    suppliers = set(ctx.world.table("suppliers")["contact_uuid"].to_list())
    assert any(c["IsSupplier"] for c in contacts)
    assert all(c["IsSupplier"] for c in contacts if c["ContactID"] in suppliers)
    for resource, key in (("Payments", "PaymentID"), ("CreditNotes", "CreditNoteID"),
                          ("BankTransactions", "BankTransactionID")):
        records, _ = walk(api, resource)
        assert len({r[key] for r in records}) == len(records)
        assert all(ms_to_instant(r["UpdatedDateUTC"]) <= ctx.now() for r in records)


def test_date_and_number_formats(api):
    body = api.get("Invoices", params={"page": 1}).json()
    assert body["Status"] == "OK" and ENVELOPE_DATE.match(body["DateTimeUTC"])
    uuid.UUID(body["Id"])
    for invoice in body["Invoices"]:
        for field in ("Date", "DueDate", "UpdatedDateUTC"):
            assert MS_DATE.match(invoice[field]), invoice[field]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00", invoice["DateString"])
        assert ms_to_instant(invoice["Date"]).strftime("%Y-%m-%dT00:00:00") == invoice["DateString"]
        for field in ("SubTotal", "TotalTax", "Total", "AmountDue", "AmountPaid", "AmountCredited"):
            value = invoice[field]
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            assert round(value, 2) == value
        assert invoice["Type"] == "ACCREC" and invoice["LineAmountTypes"] == "Exclusive"
        line_total = sum(line["LineAmount"] for line in invoice["LineItems"])
        assert abs(line_total - invoice["SubTotal"]) < 0.01


# --------------------------------------------------------------------------- the official spec
@pytest.fixture(scope="module")
def xero_spec(specs_dir):
    return yaml.safe_load((specs_dir / "xero_accounting.yaml").read_text())


def spec_validator(spec: dict, schema_name: str):
    from openapi_schema_validator import OAS30Validator, oas30_format_checker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    registry = Registry().with_resource("urn:xero-accounting", Resource.from_contents(spec, default_specification=DRAFT4))
    schema = {"$ref": f"urn:xero-accounting#/components/schemas/{schema_name}"}
    return OAS30Validator(schema, registry=registry, format_checker=oas30_format_checker)


@pytest.mark.parametrize("resource", ["Invoices", "CreditNotes", "PurchaseOrders", "Payments", "BankTransactions",
                                      "Contacts", "Items", "ManualJournals"])
def test_list_responses_validate_against_the_official_spec(api, xero_spec, resource):
    if resource == "ManualJournals":
        created = api.put("ManualJournals", json={"ManualJournals": [{
            "Narration": "Inventory variance", "Date": "2026-01-31", "Status": "POSTED",
            "JournalLines": [{"LineAmount": 12.5, "AccountCode": "630", "Description": "variance"},
                             {"LineAmount": -12.5, "AccountCode": "310", "Description": "variance"}]}]})
        assert created.status_code == 200, created.text
    params = {} if resource == "Items" else {"page": 1}
    body = api.get(resource, params=params).json()
    assert body[resource], f"{resource}: nothing to validate"
    validator = spec_validator(xero_spec, resource)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_validation_error_body_matches_the_spec(api, xero_spec):
    reply = api.put("Invoices", json={"Invoices": [{"Type": "ACCREC", "LineItems": []}]})
    assert reply.status_code == 400
    body = reply.json()
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Elements"][0]["ValidationErrors"][0]["Message"]
    assert not list(spec_validator(xero_spec, "Error").iter_errors(body))


# --------------------------------------------------------------------------- writes
def test_created_invoice_is_visible_in_later_reads(api):
    contact = walk(api, "Contacts")[0][0]["ContactID"]
    before = api.ctx.now()
    reply = api.put("Invoices", json=invoice_payload(contact, "WRITE-BACK-1"))
    assert reply.status_code == 200, reply.text
    created = reply.json()["Invoices"][0]
    assert created["Total"] == 25.0 and created["Status"] == "AUTHORISED" and created["AmountDue"] == 25.0
    assert created["InvoiceNumber"] and created["DateString"] == "2026-01-15T00:00:00"
    assert ms_to_instant(created["UpdatedDateUTC"]) == before.replace(microsecond=before.microsecond // 1000 * 1000)

    fetched = api.get(f"Invoices/{created['InvoiceID']}").json()["Invoices"][0]
    assert fetched["Reference"] == "WRITE-BACK-1"
    listed = {r["InvoiceID"] for r in walk(api, "Invoices", where='Reference=="WRITE-BACK-1"')[0]}
    assert listed == {created["InvoiceID"]}
    since = (before - timedelta(seconds=1)).isoformat()
    changed = api.get("Invoices", params={"page": 1}, headers={"If-Modified-Since": since}).json()["Invoices"]
    assert created["InvoiceID"] in {r["InvoiceID"] for r in changed}

    # the same number again is refused; POST with the InvoiceID updates in place
    clash = api.put("Invoices", json={"Invoices": [{**invoice_payload(contact)["Invoices"][0],
                                                    "InvoiceNumber": created["InvoiceNumber"]}]})
    assert clash.status_code == 400 and "unique" in clash.text
    update = api.post("Invoices", json={"Invoices": [{"InvoiceID": created["InvoiceID"], "Reference": "WRITE-BACK-2"}]})
    assert update.status_code == 200, update.text
    assert update.json()["Invoices"][0]["InvoiceID"] == created["InvoiceID"]
    assert api.get(f"Invoices/{created['InvoiceID']}").json()["Invoices"][0]["Reference"] == "WRITE-BACK-2"
    assert api.ctx.store.count("xero", "Invoices") == 1


def test_idempotency_key_replays_and_conflicts(api):
    contact = walk(api, "Contacts")[0][0]["ContactID"]
    payload = invoice_payload(contact, "IDEM-1")
    key = {"Idempotency-Key": "approve-42"}
    first = api.put("Invoices", json=payload, headers=key)
    second = api.put("Invoices", json=payload, headers=key)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert api.ctx.store.count("xero", "Invoices") == 1
    conflict = api.put("Invoices", json=invoice_payload(contact, "IDEM-2"), headers=key)
    assert conflict.status_code == 400
    assert api.ctx.store.count("xero", "Invoices") == 1
    too_long = api.put("Invoices", json=payload, headers={"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400
    ok_128 = api.put("PurchaseOrders", headers={"Idempotency-Key": "p" * 128}, json={"PurchaseOrders": [{
        "Contact": {"ContactID": contact}, "Date": "2026-01-20", "Status": "AUTHORISED",
        "LineItems": [{"Description": "Case of widgets", "Quantity": 12, "UnitAmount": 9.0}]}]})
    assert ok_128.status_code == 200, ok_128.text
    po = ok_128.json()["PurchaseOrders"][0]
    assert po["Total"] == 108.0 and po["PurchaseOrderNumber"]
    assert api.get(f"PurchaseOrders/{po['PurchaseOrderID']}").json()["PurchaseOrders"][0]["Status"] == "AUTHORISED"


def test_summarize_errors_false_and_journal_balance(api):
    contact = walk(api, "Contacts")[0][0]["ContactID"]
    good = invoice_payload(contact, "MIXED-OK")["Invoices"][0]
    reply = api.put("Invoices", params={"summarizeErrors": "false"},
                    json={"Invoices": [good, {"Type": "ACCREC", "Status": "AUTHORISED"}]})
    assert reply.status_code == 200
    statuses = [r["StatusAttributeString"] for r in reply.json()["Invoices"]]
    assert statuses == ["OK", "ERROR"]
    assert reply.json()["Invoices"][1]["ValidationErrors"]
    assert api.ctx.store.count("xero", "Invoices") == 1

    unbalanced = api.put("ManualJournals", json={"ManualJournals": [{
        "Narration": "x", "JournalLines": [{"LineAmount": 10, "AccountCode": "630"},
                                            {"LineAmount": -9, "AccountCode": "310"}]}]})
    assert unbalanced.status_code == 400 and unbalanced.json()["ErrorNumber"] == 10
    assert api.ctx.store.count("xero", "ManualJournals") == 0


# --------------------------------------------------------------------------- limits
def test_minute_limit_answers_429_with_retry_after(world, http):
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=1.0), sources=("xero",)) as (base, app):
        ctx = app.state.ctx
        headers = {"Authorization": "Bearer " + access_token(http, base, ctx),
                   "xero-tenant-id": ctx.credentials.xero_tenant_id, "Accept": "application/json"}
        remaining = []
        for _ in range(60):
            reply = http.get(f"{base}{API}/Contacts", params={"page": 1, "pageSize": 1}, headers=headers)
            assert reply.status_code == 200
            remaining.append(int(reply.headers["X-MinLimit-Remaining"]))
            assert int(reply.headers["X-DayLimit-Remaining"]) <= 5000
            assert "X-AppMinLimit-Remaining" in reply.headers
        assert remaining[0] == 59 and remaining[-1] == 0
        assert remaining == sorted(remaining, reverse=True)
        over = http.get(f"{base}{API}/Contacts", params={"page": 1, "pageSize": 1}, headers=headers)
        assert over.status_code == 429
        assert over.headers["X-Rate-Limit-Problem"] == "minute"
        assert int(over.headers["Retry-After"]) >= 1
        assert over.headers["X-MinLimit-Remaining"] == "0"


def test_concurrent_and_day_limits_name_their_problem(world, http):
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=1.0), sources=("xero",)) as (base, app):
        ctx = app.state.ctx
        limits = emulator_of(app).limits
        headers = {"Authorization": "Bearer " + access_token(http, base, ctx),
                   "xero-tenant-id": ctx.credentials.xero_tenant_id}
        # five calls still in progress for this tenant: the sixth is refused
        for _ in range(5):
            assert limits.gate.enter()
        busy = http.get(f"{base}{API}/Items", headers=headers)
        assert busy.status_code == 429 and busy.headers["X-Rate-Limit-Problem"] == "concurrent"
        for _ in range(5):
            limits.gate.leave()
        assert http.get(f"{base}{API}/Items", headers=headers).status_code == 200
        # the day's 5,000 calls used up (counted straight into the window, no waiting)
        while limits.day.try_hit()[0]:
            pass
        spent = http.get(f"{base}{API}/Items", headers=headers)
        assert spent.status_code == 429 and spent.headers["X-Rate-Limit-Problem"] == "day"
        assert spent.headers["X-DayLimit-Remaining"] == "0" and int(spent.headers["Retry-After"]) >= 1


def test_where_parser_subset():
    from connectors.sandbox.emulators.xero_where import QueryParseError, compile_where

    record = {"Status": "PAID", "Total": 21.5, "Reference": "Order 5812",
              "Contact": {"ContactID": "2965793f-6185-5fe3-9090-986d5706497c", "Name": "Shopify Customers"},
              "Date": "/Date(1784592000000+0000)/"}  # 2026-07-21
    fields = set(record)
    cases = {
        'Status=="PAID"': True,
        'Status!="PAID"': False,
        'Status=="PAID" && Total>=21.5': True,
        'Status=="DRAFT" || Total<22': True,
        'NOT (Status=="PAID")': False,
        'Reference.Contains("5812")': True,
        'Contact.Name.StartsWith("Amazon")': False,
        'Contact.Name.ToLower()=="shopify customers"': True,
        'Contact.ContactID==Guid("2965793F-6185-5FE3-9090-986D5706497C")': True,
        'Date>=DateTime(2026,07,21) AND Date<DateTime(2026,07,22)': True,
        'Date>DateTime.Parse("2026-07-21T12:00:00")': False,
        'Date.Year==2026': True,
    }
    for expression, expected in cases.items():
        assert compile_where(expression, fields, "Invoice")(record) is expected, expression
    for broken in ('Status==', "Status=='PAID'", 'Status=="PAID" AND', 'Nope=="x"', 'Total>"x" OR', 'DateTime(2026)==Date'):
        with pytest.raises(QueryParseError):
            compile_where(broken, fields, "Invoice")(record)
