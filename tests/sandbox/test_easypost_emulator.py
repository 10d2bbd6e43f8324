"""The EasyPost emulator over real HTTP: auth, id-cursor paging, the clock, dedup, claims, limits."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import polars as pl
import pytest

from connectors.sandbox.emulators.throttle import ThrottleSettings
from tests.conftest import serve

INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EasyPostClient:
    def __init__(self, base: str, ctx):
        self.root = f"{base}/easypost/v2"
        self.ctx = ctx
        self.http = httpx.Client(timeout=30, auth=(ctx.credentials.easypost_api_key, ""))

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(f"{self.root}/{path}", params=params)

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(f"{self.root}/{path}", json=body)

    def walk(self, path: str, key: str, page_size: int = 25, **params) -> tuple[list[dict], int]:
        """Every record of an index, paging with ``before_id`` until ``has_more`` is false."""
        records, pages, before = [], 0, None
        while True:
            query = dict(params, page_size=page_size)
            if before:
                query["before_id"] = before
            response = self.get(path, **query)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {key, "has_more"}
            records += body[key]
            pages += 1
            if not body["has_more"]:
                return records, pages
            before = body[key][-1]["id"]


@pytest.fixture
def easypost(world):
    with serve(world, throttle=ThrottleSettings(enabled=False), sources=("easypost",)) as (base, app):
        client = EasyPostClient(base, app.state.ctx)
        yield client
        client.http.close()


def visible_trackers(world, now: datetime) -> pl.DataFrame:
    return world.table("trackers").filter(pl.col("created_at") <= now)


def test_auth_errors_use_the_error_envelope(easypost):
    url = f"{easypost.root}/trackers"
    for answer in (httpx.get(url), httpx.get(url, auth=("EZTKwrong", "")), httpx.get(url, headers={"Authorization": "Basic %%%"})):
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "errors"} and error["errors"] == []
    assert easypost.get("trackers", page_size=1).status_code == 200
    missing = easypost.get("trackers/trk_doesnotexist")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


def test_tracker_pages_walk_every_tracker_once_newest_first(easypost, world):
    now = world.now()
    trackers, pages = easypost.walk("trackers", "trackers", page_size=25)
    expected = visible_trackers(world, now)
    ids = [t["id"] for t in trackers]
    assert len(ids) == len(set(ids)) == expected.height
    assert set(ids) == set(expected["tracker_id"].to_list())
    assert pages == max(1, -(-expected.height // 25))
    created = [instant(t["created_at"]) for t in trackers]
    assert created == sorted(created, reverse=True)
    # page_size is capped at 100 and defaults to 20
    assert len(easypost.get("trackers", page_size=500).json()["trackers"]) == min(100, expected.height)
    assert len(easypost.get("trackers").json()["trackers"]) == min(20, expected.height)
    # after_id walks back towards newer records
    if len(ids) > 3:
        newer = easypost.get("trackers", after_id=ids[3], page_size=2).json()
        assert [t["id"] for t in newer["trackers"]] == ids[1:3] and newer["has_more"] is True


def test_trackers_show_only_scans_at_or_before_the_clock(easypost, world):
    now = world.now()
    trackers, _ = easypost.walk("trackers", "trackers", page_size=100)
    events = world.table("tracking_events").filter(pl.col("occurred_at") <= now)
    counts = dict(events.group_by("tracking_code").len().iter_rows())
    latest = events.sort("seq").group_by("tracking_code").last()
    latest_status = dict(zip(latest["tracking_code"].to_list(), latest["status"].to_list()))
    for tracker in trackers:
        assert tracker["object"] == "Tracker"
        assert INSTANT.match(tracker["created_at"]) and INSTANT.match(tracker["updated_at"])
        assert instant(tracker["updated_at"]) <= now
        assert len(tracker["tracking_details"]) == counts.get(tracker["tracking_code"], 0)
        for detail in tracker["tracking_details"]:
            assert detail["object"] == "TrackingDetail" and instant(detail["datetime"]) <= now
            assert detail["tracking_location"]["object"] == "TrackingLocation"
        assert tracker["status"] == latest_status.get(tracker["tracking_code"], "unknown")
        assert tracker["fees"] == [{"object": "Fee", "type": "TrackerFee", "amount": "0.02000", "charged": True, "refunded": False}]
    one = trackers[0]
    assert easypost.get(f"trackers/{one['id']}").json() == one
    listed = easypost.get("trackers", tracking_code=one["tracking_code"]).json()["trackers"]
    assert [t["id"] for t in listed] == [one["id"]]


def test_clock_advance_brings_new_trackers_and_new_scans(easypost, world):
    t1 = world.now().replace(microsecond=0)
    world.set_clock(t1)
    before = {t["id"]: t for t in easypost.walk("trackers", "trackers", page_size=100)[0]}
    t2 = world.set_clock(t1 + timedelta(days=2))
    after = {t["id"]: t for t in easypost.walk("trackers", "trackers", page_size=100)[0]}
    new, _ = easypost.walk("trackers", "trackers", page_size=10, start_datetime=stamp(t1 + timedelta(seconds=1)))
    expected_new = world.table("trackers").filter(
        (pl.col("created_at") >= t1 + timedelta(seconds=1)) & (pl.col("created_at") <= t2)
    )
    assert {t["id"] for t in new} == set(expected_new["tracker_id"].to_list()) == set(after) - set(before)
    grew = [tid for tid, t in before.items() if len(after[tid]["tracking_details"]) > len(t["tracking_details"])]
    assert grew, "two days should add scans to existing trackers"
    for tid in grew:
        assert instant(after[tid]["updated_at"]) > t1
        assert after[tid]["tracking_details"][: len(before[tid]["tracking_details"])] == before[tid]["tracking_details"]
    window, _ = easypost.walk("trackers", "trackers", page_size=100, end_datetime=stamp(t1))
    assert {t["id"] for t in window} == set(before)


def test_creating_a_tracker_deduplicates_on_carrier_and_code(easypost, world):
    now = world.now()
    existing = visible_trackers(world, now).row(0, named=True)
    again = easypost.post("trackers", {"tracker": {"tracking_code": existing["tracking_code"], "carrier": existing["carrier"]}})
    assert again.status_code == 201 and again.json()["id"] == existing["tracker_id"]
    assert easypost.ctx.store.count("easypost", "tracker") == 0
    created = easypost.post("trackers", {"tracker": {"tracking_code": "EZ1000000001", "carrier": "USPS"}})
    assert created.status_code == 201
    tracker = created.json()
    assert tracker["id"].startswith("trk_") and tracker["status"] == "unknown" and tracker["tracking_details"] == []
    assert created.headers["location"] == f"/api/v2/trackers/{tracker['id']}"
    repeat = easypost.post("trackers", {"tracker": {"tracking_code": "EZ1000000001", "carrier": "USPS"}})
    assert repeat.json()["id"] == tracker["id"]
    assert easypost.ctx.store.count("easypost", "tracker") == 1
    assert easypost.get(f"trackers/{tracker['id']}").json() == tracker
    assert easypost.get("trackers", page_size=1).json()["trackers"][0]["id"] == tracker["id"]
    blank = easypost.post("trackers", {"tracker": {"carrier": "USPS"}})
    assert blank.status_code == 422
    assert blank.json()["error"]["errors"] == [{"field": "tracking_code", "message": "cannot be blank"}]


def test_claims_are_validated_persisted_and_listed(easypost, world):
    code = visible_trackers(world, world.now())["tracking_code"][0]
    missing = easypost.post("claims", {"type": "loss"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "PARAMETER.REQUIRED"
    invalid = easypost.post("claims", {"type": "lost", "tracking_code": code, "amount": "-3"})
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["error"]["errors"]} == {"type", "amount"}
    unknown = easypost.post("claims", {"type": "loss", "tracking_code": "NOPE123", "amount": "10.00"})
    assert unknown.status_code == 422
    created = easypost.post("claims", {"type": "loss", "tracking_code": code, "amount": 42.5,
                                       "description": "Parcel lost in transit", "contact_email": "ops@example.com"})
    assert created.status_code == 201, created.text
    claim = created.json()
    assert claim["id"].startswith("clm_") and claim["object"] == "Claim"
    assert claim["status"] == "submitted" and claim["requested_amount"] == "42.50"
    assert claim["tracking_code"] == code and INSTANT.match(claim["created_at"])
    assert easypost.post("claims", {"type": "loss", "tracking_code": code, "amount": "42.50"}).status_code == 422
    assert easypost.ctx.store.count("easypost", "claim") == 1
    assert easypost.get(f"claims/{claim['id']}").json() == claim
    listed = easypost.get("claims").json()
    assert listed == {"claims": [claim], "has_more": False}


def test_index_rate_limit_answers_429_in_the_error_envelope(world):
    # scale < 1 stretches the one-second window so the burst surely falls inside it
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=0.01), sources=("easypost",)) as (base, app):
        client = EasyPostClient(base, app.state.ctx)
        answers = [client.get("trackers", page_size=1) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        error = answers[-1].json()["error"]
        assert error["code"] == "RATE_LIMITED" and error["errors"] == []
        # single-record reads are not index endpoints
        assert client.get("trackers/trk_doesnotexist").status_code == 404
        client.http.close()


def test_record_faults_apply_to_tracker_pages(world):
    from connectors.sandbox.emulators.faults import FaultConfig

    faults = FaultConfig.from_mapping({"seed": 5, "easypost": {"rate_repeat": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("easypost",)) as (base, app):
        client = EasyPostClient(base, app.state.ctx)
        page = client.get("trackers", page_size=3).json()["trackers"]
        assert len(page) == 4 and len({t["id"] for t in page}) == 3
        client.http.close()


def test_injected_throttles_and_server_errors_speak_easypost(world):
    from connectors.sandbox.emulators.faults import FaultConfig

    faults = FaultConfig.from_mapping({"seed": 1, "easypost": {"rate_429": 1.0}})
    with serve(world, throttle=ThrottleSettings(enabled=False), faults=faults, sources=("easypost",)) as (base, app):
        client = EasyPostClient(base, app.state.ctx)
        answer = client.get("trackers")
        assert answer.status_code == 429 and answer.json()["error"]["code"] == "RATE_LIMITED"
        app.state.ctx.faults["easypost"].reconfigure(FaultConfig.from_mapping({"easypost": {"rate_5xx": 1.0}}))
        failed = client.get("trackers")
        assert failed.status_code in (500, 502, 503) and set(failed.json()["error"]) == {"code", "message", "errors"}
        client.http.close()
