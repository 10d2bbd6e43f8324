"""The NetSuite connector over real HTTP against the sandbox emulator: backfill, incremental,
faults, quarantine, crash and resume, the SuiteQL row cap, write-back upserts and auth errors."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import polars as pl
import pytest

from connectors import netsuite
from connectors.ingest import Stream, run_stream
from connectors.raw_store import RawStore
from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from connectors.transport import RetryPolicy, SourceError
from tests.conftest import serve

SCALE = 50.0  # the throttle scale: limits (and the waits they ask for) run this much faster
CLOCK = datetime(2026, 8, 20, tzinfo=timezone.utc)  # a month into the world: a small, quick backfill
SMALL_CLOCK = datetime(2026, 7, 30, tzinfo=timezone.utc)
ENTITIES = tuple(netsuite.SHAPES)


@pytest.fixture(autouse=True)
def scaled(monkeypatch):
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(SCALE))


@pytest.fixture
def early_world(world):
    world.set_clock(CLOCK)
    return world


def settings_for(base: str, app, **extra) -> netsuite.NetSuiteSettings:
    env = connector_settings(base, SandboxCredentials(app.state.ctx.credentials.seed))
    return netsuite.NetSuiteSettings.from_env({**env, **extra})


class ScaledSleep:
    """Sleeps the waits the client asks for, SCALE times faster, and remembers them."""

    def __init__(self):
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(seconds / SCALE)


def client_for(settings, **kw) -> netsuite.NetSuiteClient:
    return netsuite.NetSuiteClient(settings, sleep=kw.pop("sleep", None) or ScaledSleep(),
                                   policy=kw.pop("policy", None) or RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=1.0), **kw)


def run_all(store: RawStore, client: netsuite.NetSuiteClient, only=ENTITIES) -> dict:
    return {s.entity: run_stream(store, s) for s in netsuite.streams(client) if s.entity in only}


def table(store: RawStore, entity: str) -> list[tuple]:
    key = netsuite.SHAPES[entity].key.name
    return store.con.execute(f"select * exclude (loaded_at) from raw.netsuite__{entity} order by \"{key}\"").fetchall()


def keys(store: RawStore, entity: str) -> set[str]:
    key = netsuite.SHAPES[entity].key.name
    rows = store.con.execute(f'select "{key}" from raw.netsuite__{entity}').fetchall()
    assert len(rows) == len({r[0] for r in rows}), f"{entity}: duplicate keys"
    return {r[0] for r in rows}


def expected_keys(world, now: datetime) -> dict[str, set[str]]:
    """What the world says NetSuite holds at ``now``, by canonical entity."""
    def ids(name, column="netsuite_id", at="created_at", where=None):
        frame = world.table(name).filter(pl.col(at) <= now)
        if where is not None:
            frame = frame.filter(where)
        return {str(v) for v in frame[column].to_list()}

    return {
        "invoices": ids("invoices"), "credit_notes": ids("credit_notes"), "payments": ids("payments"),
        "deposits": ids("bank_transactions"), "purchase_orders": ids("purchase_orders", at="ordered_at"),
        "contacts": ids("contacts", where=pl.col("kind") == "customer") | ids("suppliers"),
        "items": ids("variants", column="netsuite_item_id"), "journals": set(),
    }


def same_tables(a: RawStore, b: RawStore) -> None:
    for entity in ENTITIES:
        left, right = table(a, entity), table(b, entity)
        assert len(left) == len(right), entity
        assert left == right, f"{entity}: tables differ"


# ---------------------------------------------------------------- backfill and incremental
def test_backfill_then_incremental_lands_every_record_once(early_world, tmp_path):
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        settings = settings_for(base, app)
        store = RawStore(tmp_path / "warehouse.duckdb")
        with client_for(settings) as client:
            backfill = run_all(store, client)
            backfill_single_reads = client.records_fetched
        want = expected_keys(early_world, CLOCK)
        for entity in ENTITIES:
            assert keys(store, entity) == want[entity], entity
        assert all(r.quarantined == 0 for r in backfill.values())
        # typed columns as reconciliation reads them
        invoice = store.con.execute("select status, currency, total, amount_due, reference, contact_id from raw.netsuite__invoices "
                                    "where status = 'Paid In Full' limit 1").fetchone()
        assert invoice[1] == "USD" and invoice[3] == 0 and invoice[4] and invoice[5]
        assert store.con.execute("select count(*) from raw.netsuite__payments where invoice_id is null").fetchone()[0] == 0
        assert store.con.execute("select count(*) from raw.netsuite__deposits where direction = 'in' and reference is not null").fetchone()[0] \
            == len(want["deposits"])
        assert store.con.execute("select count(*) from raw.netsuite__contacts where is_supplier = 'true'").fetchone()[0] \
            == early_world.table("suppliers").height
        # open invoices carry what the record service says remains
        with httpx.Client() as http:
            token = http.post(settings.token_url, data={"grant_type": "client_credentials"},
                              auth=(settings.client_id, settings.client_secret)).json()["access_token"]
            for invoice_id, amount_due in store.con.execute(
                    "select invoice_id, amount_due from raw.netsuite__invoices where status = 'Open' order by invoice_id limit 5").fetchall():
                record = http.get(f"{settings.base_url}/services/rest/record/v1/invoice/{invoice_id}",
                                  headers={"Authorization": f"Bearer {token}"}).json()
                assert record["amountRemaining"] == pytest.approx(amount_due)

        later = CLOCK + timedelta(days=1)
        early_world.set_clock(later)
        with client_for(settings) as client:
            incremental = run_all(store, client)
            incremental_single_reads = client.records_fetched
        want = expected_keys(early_world, later)
        for entity in ENTITIES:
            assert keys(store, entity) == want[entity], entity
        assert sum(r.records for r in incremental.values()) * 2 < sum(r.records for r in backfill.values())
        assert incremental_single_reads * 2 < backfill_single_reads
        # latest versions: the incremental tables equal a fresh backfill at the new clock
        fresh = RawStore(tmp_path / "fresh.duckdb")
        with client_for(settings) as client:
            run_all(fresh, client)
        same_tables(store, fresh)


# ---------------------------------------------------------------- faults
def test_faults_end_with_the_same_tables_as_a_clean_run(early_world, tmp_path, monkeypatch):
    early_world.set_clock(SMALL_CLOCK)  # every fault costs waits: a smaller book keeps this quick
    monkeypatch.setattr(netsuite, "PAGE_SIZE", 20)  # more pages, more pages for record faults to hit
    faults = FaultConfig.from_mapping({"seed": 3, "netsuite": {
        "rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
        "rate_timeout": 0.01, "timeout_seconds": 1.5}})
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        clean = RawStore(tmp_path / "clean.duckdb")
        with client_for(settings_for(base, app)) as client:
            run_all(clean, client)
        # the same server (record links name its address), now injecting faults
        app.state.ctx.faults["netsuite"].reconfigure(faults)
        faulty = RawStore(tmp_path / "faulty.duckdb")
        sleep = ScaledSleep()
        # a client timeout below the server's hold: held answers time out and are asked again
        with client_for(settings_for(base, app), timeout=0.5, sleep=sleep) as client:
            run_all(faulty, client)
            assert client.stats["throttled"] > 0 and client.stats["retries"] > 0
        injected = dict(app.state.ctx.faults["netsuite"].injected)
    assert injected.get("429") and injected.get("5xx") and injected.get("truncate") and injected.get("repeat") and injected.get("timeout")
    assert max(sleep.asked) >= 1.0  # the server's Retry-After was honoured (scaled only by the test's sleep)
    same_tables(clean, faulty)


def test_missing_fields_are_quarantined_with_the_field_named(early_world, tmp_path):
    faults = FaultConfig.from_mapping({"seed": 3, "netsuite": {"rate_missing_field": 0.05}})
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), faults=faults, sources=("netsuite",)) as (base, app):
        store = RawStore(tmp_path / "warehouse.duckdb")
        with client_for(settings_for(base, app)) as client:
            results = run_all(store, client)
    quarantined = store.con.execute("select entity, record_id, reason from raw._quarantine").fetchall()
    assert quarantined and sum(r.quarantined for r in results.values()) == len(quarantined)
    columns = {f.name for shape in netsuite.SHAPES.values() for f in shape.all_fields}
    for entity, record_id, reason in quarantined:
        assert reason.split(":")[0] in columns, reason  # names the field that could not be read
    want = expected_keys(early_world, CLOCK)
    for entity in ENTITIES:
        bad = {r[1] for r in quarantined if r[0] == entity}
        assert keys(store, entity) | bad == want[entity], entity  # everything else loaded
        assert not keys(store, entity) & bad


# ---------------------------------------------------------------- crash, resume and the row cap
def test_crash_mid_stream_then_rerun_and_row_cap_windows(early_world, tmp_path, monkeypatch):
    early_world.set_clock(SMALL_CLOCK)
    monkeypatch.setattr(netsuite, "PAGE_SIZE", 40)
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        settings = settings_for(base, app)
        clean = RawStore(tmp_path / "clean.duckdb")
        with client_for(settings) as client:
            run_all(clean, client)

        crashed = RawStore(tmp_path / "crashed.duckdb")
        with client_for(settings) as client:
            for stream in netsuite.streams(client):
                if stream.entity not in ("invoices", "payments"):
                    continue

                def dying(since, resume, read=stream.read):
                    for number, page in enumerate(read(since, resume), start=1):
                        if number == 3:
                            raise RuntimeError("killed mid-stream")
                        yield page

                with pytest.raises(RuntimeError):
                    run_stream(crashed, Stream(stream.source, stream.entity, stream.shape, dying))
        assert crashed.state("netsuite", "invoices").resume is not None
        with client_for(settings) as client:
            results = run_all(crashed, client)
        assert results["invoices"].resumed
        same_tables(clean, crashed)

        # a result that would reach SuiteQL's row cap is read in lastModifiedDate windows
        monkeypatch.setattr(netsuite, "QUERY_ROW_CAP", 60)
        narrowed = []
        original = netsuite.NetSuiteClient._narrowed

        def spy(self, *args):
            narrowed.append(original(self, *args))
            return narrowed[-1]

        monkeypatch.setattr(netsuite.NetSuiteClient, "_narrowed", spy)
        windowed = RawStore(tmp_path / "windowed.duckdb")
        with client_for(settings) as client:
            run_all(windowed, client)
        assert any(bound is not None for bound in narrowed)
        same_tables(clean, windowed)


# ---------------------------------------------------------------- write-back
def test_upsert_by_external_id_is_idempotent_and_lands_as_a_journal(early_world, tmp_path):
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        settings = settings_for(base, app)
        journal = {"tranDate": "2026-08-19", "memo": "Variance CL-EXC-1",
                   "line": {"items": [{"account": {"id": "6000"}, "debit": 12.5}, {"account": {"id": "1200"}, "credit": 12.5}]}}
        store = RawStore(tmp_path / "warehouse.duckdb")
        with client_for(settings) as client:
            first = client.upsert("journalEntry", "CL-EXC-1", journal)
            again = client.upsert("journalEntry", "CL-EXC-1", journal)  # a retried write lands on the same record
            assert first and first == again
            with pytest.raises(ValueError):
                client.upsert("customer", "X", {})
            run_all(store, client, only=("journals",))
        rows = store.con.execute("select journal_id, narration, journal_date from raw.netsuite__journals").fetchall()
        assert rows == [(first, "Variance CL-EXC-1", datetime(2026, 8, 19).date())]


# ---------------------------------------------------------------- auth, governance, settings
def test_wrong_credential_raises_without_the_secret(early_world):
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        secret = "not-the-secret-" + "x" * 20
        settings = settings_for(base, app, NETSUITE_CLIENT_SECRET=secret)
        with client_for(settings) as client, pytest.raises(SourceError) as caught:
            list(netsuite.streams(client)[0].read(None, None))
    message = str(caught.value)
    assert "netsuite" in message and "POST" in message and settings.token_url in message and "401" in message
    assert secret not in message and secret not in repr(settings)


def test_expired_token_is_refreshed_once_on_401(early_world):
    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        with client_for(settings_for(base, app)) as client:
            client.token.get()
            client.token.access_token = "expired"  # as if the server had revoked it
            pages = list(client.rows([netsuite.ITEMS], None, None))
            assert sum(len(p.records) for p in pages) == early_world.table("variants").filter(pl.col("created_at") <= CLOCK).height


def test_request_limit_exceeded_is_retried_and_other_400s_are_not():
    calls = {"suiteql": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            assert request.headers["authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600, "token_type": "bearer"})
        assert request.headers["prefer"] == "transient" and request.headers["authorization"] == "Bearer t"
        calls["suiteql"] += 1
        if calls["suiteql"] == 1:
            return httpx.Response(400, json={"status": 400, "o:errorDetails": [
                {"detail": "Request limit exceeded", "o:errorCode": "SSS_REQUEST_LIMIT_EXCEEDED"}]})
        if "bad" in json.loads(request.content)["q"]:
            return httpx.Response(400, json={"status": 400, "o:errorDetails": [{"detail": "no", "o:errorCode": "INVALID_PARAMETER"}]})
        return httpx.Response(200, json={"items": [], "hasMore": False, "totalResults": 0, "count": 0, "offset": 0})

    settings = netsuite.NetSuiteSettings.from_env({
        "NETSUITE_BASE_URL": "https://acct.example", "NETSUITE_TOKEN_URL": "https://acct.example/token",
        "NETSUITE_ACCOUNT_ID": "1", "NETSUITE_CLIENT_ID": "id", "NETSUITE_CLIENT_SECRET": "secret"})
    with netsuite.NetSuiteClient(settings, transport=httpx.MockTransport(handler), sleep=lambda s: None) as client:
        assert client.suiteql("SELECT 1")["totalResults"] == 0
        assert calls["suiteql"] == 2 and client.stats["throttled"] == 1
        with pytest.raises(SourceError):
            client.suiteql("SELECT bad")
        assert calls["suiteql"] == 3


def test_settings_name_the_missing_variable():
    with pytest.raises(ValueError, match="NETSUITE_CLIENT_SECRET"):
        netsuite.NetSuiteSettings.from_env({"NETSUITE_BASE_URL": "https://a", "NETSUITE_TOKEN_URL": "https://a/t",
                                            "NETSUITE_ACCOUNT_ID": "1", "NETSUITE_CLIENT_ID": "id"})
    with pytest.raises(ValueError, match="NETSUITE_CONCURRENCY"):
        netsuite.NetSuiteSettings.from_env({"NETSUITE_BASE_URL": "https://a", "NETSUITE_TOKEN_URL": "https://a/t",
                                            "NETSUITE_ACCOUNT_ID": "1", "NETSUITE_CLIENT_ID": "id",
                                            "NETSUITE_CLIENT_SECRET": "s", "NETSUITE_CONCURRENCY": "0"})


def test_refresh_token_grant_when_one_is_configured(early_world):
    from connectors.sandbox.emulators.netsuite import sandbox_refresh_token

    with serve(early_world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("netsuite",)) as (base, app):
        refresh = sandbox_refresh_token(app.state.ctx.credentials)
        settings = settings_for(base, app, NETSUITE_REFRESH_TOKEN=refresh)
        assert refresh not in repr(settings)
        with client_for(settings) as client:
            pages = list(client.rows([netsuite.CUSTOMERS, netsuite.VENDORS], None, None))
        assert {r["entitytype"] for p in pages for r in p.records} == {"customer", "vendor"}
        bad = settings_for(base, app, NETSUITE_REFRESH_TOKEN="revoked")
        with client_for(bad) as client, pytest.raises(SourceError, match="HTTP 400"):
            client.token.get()


def test_session_time_zone_round_trips_instants():
    settings = netsuite.NetSuiteSettings.from_env({
        "NETSUITE_BASE_URL": "https://acct.example", "NETSUITE_TOKEN_URL": "https://acct.example/token",
        "NETSUITE_ACCOUNT_ID": "1", "NETSUITE_CLIENT_ID": "id", "NETSUITE_CLIENT_SECRET": "secret",
        "NETSUITE_TIMEZONE": "America/Los_Angeles"})
    with netsuite.NetSuiteClient(settings) as client:
        instant = datetime(2026, 8, 1, 7, 30, tzinfo=timezone.utc)
        assert client._literal(instant) == "TO_DATE('2026-08-01 00:30:00', 'YYYY-MM-DD HH24:MI:SS')"
        assert client._to_utc("2026-08-01 00:30:00") == instant
