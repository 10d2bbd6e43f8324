"""The EasyPost connector over real HTTP against the emulator: backfill, the open-tracker window,
faults, quarantine, crash and resume, refused credentials, pacing and safe writes."""
from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from datetime import timedelta

import polars as pl
import pytest

from connectors.easypost import FINAL_STATUSES, OPEN_HORIZON, SHAPES, EasyPostClient, EasyPostSettings, streams
from connectors.ingest import run_stream
from connectors.raw_store import RawStore
from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from connectors.transport import RetryPolicy, SourceError
from tests.conftest import SMALL_SEED, serve

SCALE = 20  # the emulator runs its 5-a-second list limit 20x faster and the client paces to match


@contextmanager
def live(world, monkeypatch, faults: FaultConfig | None = None, scale: float = SCALE):
    """A throttled EasyPost emulator over ``world`` and the settings that point at it."""
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(scale))
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=scale), faults=faults, sources=("easypost",)) as (base, app):
        yield EasyPostSettings.from_env(connector_settings(base, SandboxCredentials(SMALL_SEED))), app.state.ctx


def client_for(settings: EasyPostSettings, **kw) -> EasyPostClient:
    return EasyPostClient(settings, policy=RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.5), **kw)


def sync(client: EasyPostClient, store: RawStore, wrap=None):
    """One run of the tracker stream, with the raw store it reads its window from."""
    stream = streams(client, store)[0]
    return run_stream(store, wrap(stream) if wrap else stream)


def snapshot(store: RawStore) -> dict[str, list]:
    rows = store.con.execute("select * exclude (loaded_at) from raw.easypost__trackers").fetchall()
    state = store.con.execute("select cursor_value, resume from raw._sync_state where stream = 'easypost__trackers'").fetchall()
    return {"trackers": sorted(rows, key=repr), "state": state}


def keys(store: RawStore) -> list[str]:
    return [r[0] for r in store.con.execute("select id from raw.easypost__trackers").fetchall()]


def expected_keys(world) -> set[str]:
    return set(world.table("trackers").filter(pl.col("created_at") <= world.now())["tracker_id"].to_list())


def current_trackers(client: EasyPostClient) -> dict[str, dict]:
    """Every tracker as EasyPost shows it now (a full walk, newest first)."""
    return {t["id"]: t for page in client.list_pages("trackers", None, None) for t in page.records}


# ----------------------------------------------------------------------------- backfill and incremental
def test_backfill_then_incremental_lands_latest_versions(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, _):
        with client_for(settings) as client:
            store = RawStore(tmp_path / "w.duckdb")
            backfill = sync(client, store)
            found = keys(store)
            assert len(found) == len(set(found)) and set(found) == expected_keys(world)
            assert backfill.pages == -(-len(found) // 100)

            open_before = store.con.execute(
                f"select count(*) from raw.easypost__trackers where status not in {FINAL_STATUSES}").fetchone()[0]
            assert open_before > 0
            world.set_clock(world.now() + timedelta(days=5))
            incremental = sync(client, store)
            found = keys(store)
            assert len(found) == len(set(found)) and set(found) == expected_keys(world)
            assert incremental.records < backfill.records / 3

            # every tracker is the version EasyPost shows now: new scans on old open trackers
            # (lost parcels too) were picked up, and nothing final was missed
            now = current_trackers(client)
            stored = {k: json.loads(v) for k, v in store.con.execute("select id, payload from raw.easypost__trackers").fetchall()}
            assert stored == now
            # the window really was narrower than everything: the oldest trackers were not listed again
            oldest = store.con.execute("select min(created_at) from raw.easypost__trackers").fetchone()[0]
            assert world.now() - oldest > OPEN_HORIZON * 2


def test_without_the_raw_store_the_window_is_the_horizon(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, _):
        with client_for(settings) as client:
            store = RawStore(tmp_path / "w.duckdb")
            run_stream(store, streams(client)[0])
            world.set_clock(world.now() + timedelta(days=1))
            again = run_stream(store, streams(client)[0])
            assert 0 < again.records < len(keys(store)) / 3
            assert set(keys(store)) == expected_keys(world)


# ----------------------------------------------------------------------------- faults
FAULTS = {"seed": 3, "easypost": {"rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
                                  "rate_timeout": 0.05, "timeout_seconds": 1.0}}


def test_faults_end_in_the_same_tables_as_a_clean_run(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, ctx):
        clean, faulted = RawStore(tmp_path / "clean.duckdb"), RawStore(tmp_path / "faulted.duckdb")
        with client_for(settings) as client:
            sync(client, clean)
        ctx.faults["easypost"].reconfigure(FaultConfig.from_mapping(FAULTS))
        with client_for(settings, timeout=0.4) as client:
            sync(client, faulted)
            assert client.stats["throttled"] > 0 and client.stats["retries"] > 0
        injected = ctx.faults["easypost"].injected
        # with these seeds every kind is drawn; a slow machine (extra retries) may shift the draws
        assert "429" in injected and len(injected) >= 3, injected
        # and the incremental run under the same faults
        world.set_clock(world.now() + timedelta(days=3))
        with client_for(settings, timeout=0.4) as client:
            sync(client, faulted)
        ctx.faults["easypost"].reconfigure(FaultConfig.none())
        with client_for(settings) as client:
            sync(client, clean)
    assert snapshot(faulted) == snapshot(clean)
    assert faulted.con.execute("select count(*) from raw._quarantine").fetchone()[0] == 0


def test_missing_fields_are_quarantined_naming_the_field(world, monkeypatch, tmp_path):
    faults = FaultConfig.from_mapping({"seed": 3, "easypost": {"rate_missing_field": 0.05}})
    with live(world, monkeypatch, faults) as (settings, _):
        store = RawStore(tmp_path / "w.duckdb")
        with client_for(settings) as client:
            result = sync(client, store)
    quarantined = store.con.execute("select record_id, reason, payload from raw._quarantine").fetchall()
    assert result.quarantined == len(quarantined) > 0
    relied_on = {"updated_at", "tracking_details", "tracking_code", "carrier", "status", "created_at"}
    for record_id, reason, payload in quarantined:
        field = reason.split(":")[0]
        assert field in relied_on and field not in json.loads(payload), reason
    loaded, held = set(keys(store)), {r[0] for r in quarantined}
    assert loaded | held == expected_keys(world) and not loaded & held
    for (payload,) in store.con.execute("select payload from raw.easypost__trackers").fetchall():
        assert relied_on <= set(json.loads(payload))


# ----------------------------------------------------------------------------- crash and resume
class Crash(RuntimeError):
    pass


def crashing(after_pages: int):
    """Wrap a stream so its reader dies after ``after_pages`` pages (committed by the runner)."""
    def wrap(stream):
        def read(since, resume):
            for n, page in enumerate(stream.read(since, resume)):
                if n == after_pages:
                    raise Crash(f"killed after {after_pages} pages")
                yield page
        return dataclasses.replace(stream, read=read)
    return wrap


def test_a_crash_mid_stream_then_a_rerun_ends_with_the_same_tables(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, _):
        with client_for(settings) as client:
            clean, store = RawStore(tmp_path / "clean.duckdb"), RawStore(tmp_path / "crashed.duckdb")
            sync(client, clean)
            with pytest.raises(Crash):
                sync(client, store, crashing(4))
            resumed = sync(client, store)
            assert resumed.resumed and resumed.pages < 42
            assert snapshot(store) == snapshot(clean)

            # an incremental run killed in its last pages (the one-by-one refresh of old open trackers)
            world.set_clock(world.now() + timedelta(days=4))
            reference = sync(client, clean)
            with pytest.raises(Crash):
                sync(client, store, crashing(reference.pages - 1))
            state = json.loads(store.con.execute(
                "select resume from raw._sync_state where stream = 'easypost__trackers'").fetchone()[0])
            assert state["page"]["phase"] == "refresh"
            assert sync(client, store).resumed
    assert snapshot(store) == snapshot(clean)


# ----------------------------------------------------------------------------- refusals and secrets
def test_wrong_key_raises_source_error_without_the_secret(world, monkeypatch, tmp_path):
    with live(world, monkeypatch) as (settings, _):
        wrong = dataclasses.replace(settings, api_key="EZTKnot-the-right-key-42")
        with client_for(wrong) as client:
            with pytest.raises(SourceError) as caught:
                sync(client, RawStore(tmp_path / "w.duckdb"))
    message = str(caught.value)
    assert message.startswith("easypost: GET ") and "/v2/trackers" in message and "HTTP 401" in message
    assert "not-the-right-key" not in message and settings.api_key not in message
    assert not caught.value.retryable
    assert settings.api_key not in repr(settings)
    with pytest.raises(ValueError, match="EASYPOST_API_KEY"):
        EasyPostSettings.from_env({"EASYPOST_BASE_URL": "https://api.easypost.com/v2"})


def test_list_pacing_stays_under_five_a_second(world, monkeypatch, tmp_path):
    # page_size 50: over 80 list calls against 5 a second (100 a second at this scale)
    with live(world, monkeypatch) as (settings, _):
        with client_for(settings, page_size=50) as client:
            store = RawStore(tmp_path / "w.duckdb")
            result = sync(client, store)
            assert result.pages > 80 and set(keys(store)) == expected_keys(world)
            # the pacer, not 429s, sets the pace (a rare 429 from timing jitter is retried)
            assert client.stats["throttled"] <= result.pages // 20


# ----------------------------------------------------------------------------- writes
def test_writes_are_safe_to_retry(world, monkeypatch):
    with live(world, monkeypatch) as (settings, ctx):
        with client_for(settings) as client:
            first = client.create_tracker("EZ1000000001", "USPS")
            again = client.create_tracker("EZ1000000001", "USPS")
            assert first["id"] == again["id"] and first["tracking_code"] == "EZ1000000001"
            lost = world.table("trackers").filter(pl.col("created_at") <= world.now())["tracking_code"][0]
            claim = {"type": "loss", "tracking_code": lost, "amount": "24.99", "description": "Lost in transit",
                     "contact_email": "ops@example.com"}
            filed = client.create_claim(claim)
            refiled = client.create_claim(claim)
            assert filed["id"] == refiled["id"] and filed["status"] == "submitted"
            with pytest.raises(SourceError) as caught:  # a real refusal is not mistaken for a duplicate
                client.create_claim({**claim, "tracking_code": "NO-SUCH-CODE"})
            assert caught.value.status == 422
            with pytest.raises(ValueError, match="amount"):
                client.create_claim({"type": "loss", "tracking_code": lost})
        # answers lost to timeouts (the server applied the write): the retry finds the claim, never a second one
        ctx.faults["easypost"].reconfigure(FaultConfig.from_mapping(
            {"seed": 2, "easypost": {"rate_timeout": 0.5, "timeout_seconds": 0.6}}))
        other = world.table("trackers").filter(pl.col("created_at") <= world.now())["tracking_code"][1]
        with client_for(settings, timeout=0.3) as client:
            filed = client.create_claim({**claim, "tracking_code": other})
        assert ctx.faults["easypost"].injected.get("timeout")
        ctx.faults["easypost"].reconfigure(FaultConfig.none())
        with client_for(settings) as client:
            claims = [c for page in client.list_pages("claims", None, None) for c in page.records
                      if c["tracking_code"] == other]
        assert [c["id"] for c in claims] == [filed["id"]]


def test_shape_keeps_scans_in_the_payload():
    shape = SHAPES["trackers"]
    assert shape.key.name == "id" and shape.updated_at.name == "updated_at"
    names = {f.name for f in shape.fields}
    assert {"tracking_code", "carrier", "status", "status_detail", "created_at", "est_delivery_date"} <= names
