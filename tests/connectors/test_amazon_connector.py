"""The Amazon SP-API connector over real HTTP against the sandbox emulator on 127.0.0.1.

Backfill, incremental runs, fault injection, damaged records, crashes, credentials, expired
document URLs, pacing, and the settlement flat-file parser on hand-made files.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from connectors.amazon import AmazonClient, AmazonSettings, DocumentUrlExpired, streams
from connectors.amazon_settlement_report import (
    SETTLEMENT_LINE_SHAPE,
    SETTLEMENT_SHAPE,
    decode_document,
    parse_settlement_report,
    settlement_line_records,
    settlement_records,
)
from connectors.ingest import run_stream
from connectors.raw_store import RawStore
from connectors.records import shape_page
from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.faults import FaultConfig
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from connectors.transport import RetryPolicy, SourceError
from tests.conftest import SMALL_SEED, serve

SCALE = 2000.0  # the sandbox runs SP-API's usage plans 2000x faster; the connector paces to match
ENTITIES = ("orders", "settlements", "settlement_lines")
API_FIELDS = {"createdTime", "lastUpdatedTime", "salesChannel.channelName", "orderItems", "fulfillment.fulfillmentStatus"}


# ---------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def scaled_limits(monkeypatch):
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(SCALE))


@pytest.fixture
def live(world):
    """A throttled sandbox serving /amazon only: (base_url, app, world)."""
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=SCALE), sources=("amazon",)) as (base, app):
        yield base, app, world


def settings_for(base: str, **overrides) -> AmazonSettings:
    env = connector_settings(base, SandboxCredentials(SMALL_SEED))
    return dataclasses.replace(AmazonSettings.from_env(env), **overrides)


def client_for(base: str, world, **kw) -> AmazonClient:
    kw.setdefault("policy", RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.5))
    return AmazonClient(settings_for(base, **kw.pop("overrides", {})), clock=world.now, **kw)


def run_all(store: RawStore, client: AmazonClient, only=ENTITIES) -> dict:
    return {s.entity: run_stream(store, s) for s in streams(client) if s.entity in only}


def rows(store: RawStore, entity: str) -> list[tuple]:
    """A raw table without its load times, sorted: what two runs must agree on."""
    columns = [r[0] for r in store.con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
        "order by ordinal_position", [f"amazon__{entity}"]).fetchall() if r[0] != "loaded_at"]
    quoted = ", ".join(f'"{c}"' for c in columns)
    return store.con.execute(f"select {quoted} from raw.amazon__{entity} order by 1").fetchall()


def keys(store: RawStore, entity: str) -> list[str]:
    key = {"orders": "order_id", "settlements": "settlement_id", "settlement_lines": "line_key"}[entity]
    return [r[0] for r in store.con.execute(f'select "{key}" from raw.amazon__{entity}').fetchall()]


def quarantine(store: RawStore, entity: str) -> list[tuple]:
    return store.con.execute("select record_id, reason from raw._quarantine where source = 'amazon' and entity = ?",
                             [entity]).fetchall()


def view_of(now: datetime) -> datetime:
    """What the Orders API shows: the clock minus Amazon's two-minute delay, whole seconds."""
    return (now - timedelta(minutes=2)).replace(microsecond=0)


def world_order_states(world, view: datetime) -> dict[str, str]:
    """orderId -> fulfillment status of every Amazon order that exists at ``view``."""
    at = pl.lit(view, dtype=pl.Datetime("us", "UTC"))
    second = lambda col: pl.col(col).dt.truncate("1s")  # noqa: E731
    frame = (world.table("orders").filter(pl.col("channel") == "amazon").filter(second("created_at") <= at)
             .select("channel_order_id",
                     pl.when(second("cancelled_at") <= at).then(pl.lit("CANCELLED"))
                     .when(second("amazon_shipped_at") <= at).then(pl.lit("SHIPPED"))
                     .otherwise(pl.lit("UNSHIPPED")).alias("status")))
    return dict(frame.iter_rows())


def world_settlements(world, since: datetime, until: datetime) -> pl.DataFrame:
    at, lo = (pl.lit(v, dtype=pl.Datetime("us", "UTC")) for v in (until, since))
    return world.table("settlements").filter((pl.col("report_created_at") >= lo) & (pl.col("report_created_at") <= at))


def world_line_keys(world, settlement_ids: list[int]) -> set[str]:
    lines = world.table("settlement_lines").filter(pl.col("settlement_id").is_in(settlement_ids))
    return {f"{s}:{n}" for s, n in lines.select("settlement_id", "line_no").iter_rows()}


def emulator(app):
    """The Amazon emulator's own app (token table, URL signer) under the mount and fault middleware."""
    mount = next(r for r in app.routes if getattr(r, "path", None) == "/amazon")
    return mount.app.app


# ---------------------------------------------------------------------- backfill and incremental
def test_backfill_then_incremental_lands_exactly_what_amazon_shows(live, tmp_path):
    base, app, world = live
    store = RawStore(tmp_path / "wh.duckdb")
    now = world.now()
    with client_for(base, world) as client:
        backfill = run_all(store, client)

        expected = world_order_states(world, view_of(now))
        assert expected, "the small world should have Amazon orders before the clock"
        order_keys = keys(store, "orders")
        assert len(order_keys) == len(set(order_keys)) and set(order_keys) == set(expected)
        statuses = dict(store.con.execute("select order_id, fulfillment_status from raw.amazon__orders").fetchall())
        assert statuses == expected

        # no createdSince on a first run: Amazon's default window is the last 90 days
        visible = world_settlements(world, now - timedelta(days=90), now)
        assert visible.height >= 3
        assert set(keys(store, "settlements")) == {str(s) for s in visible["settlement_id"]}
        line_keys = keys(store, "settlement_lines")
        assert len(line_keys) == len(set(line_keys))
        assert set(line_keys) == world_line_keys(world, visible["settlement_id"].to_list())
        totals = store.con.execute("""
            select s.settlement_id, s.total_amount, round(sum(l.amount), 2), s.currency
            from raw.amazon__settlements s join raw.amazon__settlement_lines l using (settlement_id)
            group by all""").fetchall()
        world_totals = {str(r["settlement_id"]): r["total_cents"] / 100 for r in visible.iter_rows(named=True)}
        assert {t[0]: t[1] for t in totals} == pytest.approx(world_totals)
        assert all(abs(t[1] - t[2]) < 0.005 and t[3] == "USD" for t in totals)
        assert not store.con.execute("select count(*) from raw._quarantine").fetchone()[0]

        later = world.set_clock(now + timedelta(days=7))
        incremental = run_all(store, client)

    expected_later = world_order_states(world, view_of(later))
    order_keys = keys(store, "orders")
    assert len(order_keys) == len(set(order_keys)) and set(order_keys) == set(expected_later)
    assert len(expected_later) > len(expected), "a week brings new orders"
    statuses = dict(store.con.execute("select order_id, fulfillment_status from raw.amazon__orders").fetchall())
    assert statuses == expected_later  # latest versions: orders that shipped or were cancelled moved on
    changed = {k for k in expected if expected[k] != expected_later[k]}
    assert changed, "a week should ship or cancel some orders already landed"
    assert incremental["orders"].records < backfill["orders"].records / 3

    new_reports = world_settlements(world, now + timedelta(seconds=1), later)
    assert new_reports.height >= 1
    assert set(keys(store, "settlements")) == {str(s) for s in pl.concat([visible, new_reports])["settlement_id"]}
    assert set(keys(store, "settlement_lines")) == world_line_keys(
        world, visible["settlement_id"].to_list() + new_reports["settlement_id"].to_list())
    assert incremental["settlement_lines"].records < backfill["settlement_lines"].records / 2
    store.close()


# ---------------------------------------------------------------------- faults
def test_injected_faults_end_in_the_same_tables_as_a_clean_run(live, tmp_path):
    base, app, world = live
    clean = RawStore(tmp_path / "clean.duckdb")
    with client_for(base, world) as client:
        run_all(clean, client)

    app.state.ctx.faults["amazon"].reconfigure(FaultConfig.from_mapping({"seed": 8, "amazon": {
        "rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
        "rate_timeout": 0.05, "timeout_seconds": 2.0}}))
    faulty = RawStore(tmp_path / "faulty.duckdb")
    with client_for(base, world, timeout=1.0) as client:
        run_all(faulty, client)
        assert client.stats["throttled"] + client.lwa.stats["throttled"] > 0
    injected = app.state.ctx.faults["amazon"].injected
    # seed 8 draws every kind at least once over this run's few dozen requests (fewer kinds if a
    # slow machine adds retries and shifts the draws)
    assert injected.get("429") and len(injected) >= 3, injected
    for entity in ENTITIES:
        assert rows(faulty, entity) == rows(clean, entity), entity
    assert not faulty.con.execute("select count(*) from raw._quarantine").fetchone()[0]
    clean.close()
    faulty.close()


def test_records_missing_a_field_are_quarantined_with_its_name_and_the_rest_load(live, tmp_path):
    base, app, world = live
    clean = RawStore(tmp_path / "clean.duckdb")
    with client_for(base, world) as client:
        run_all(clean, client, only=("orders",))
    app.state.ctx.faults["amazon"].reconfigure(FaultConfig.from_mapping({"seed": 3, "amazon": {"rate_missing_field": 0.05}}))
    store = RawStore(tmp_path / "damaged.duckdb")
    with client_for(base, world) as client:
        result = run_all(store, client, only=("orders",))["orders"]

    bad = quarantine(store, "orders")
    assert bad and result.quarantined == len(bad)
    assert {reason.split(":")[0] for _, reason in bad} <= API_FIELDS
    assert all(reason.endswith("missing") for _, reason in bad)
    expected = set(world_order_states(world, view_of(world.now())))
    loaded = set(keys(store, "orders"))
    assert loaded | {record_id for record_id, _ in bad} == expected
    # what loaded is either untouched or lacks only a dataset Amazon may leave out
    clean_rows = {r[0]: r for r in rows(clean, "orders")}
    for row in rows(store, "orders"):
        if row != clean_rows[row[0]]:
            payload, clean_payload = json.loads(row[-1]), json.loads(clean_rows[row[0]][-1])
            assert set(clean_payload) - set(payload) <= {"proceeds", "packages"}
            assert {k: v for k, v in clean_payload.items() if k in payload} == payload
    clean.close()
    store.close()


# ---------------------------------------------------------------------- crashes and credentials
def test_a_crash_mid_stream_then_a_rerun_ends_with_the_same_tables(live, tmp_path):
    base, app, world = live
    clean = RawStore(tmp_path / "clean.duckdb")
    with client_for(base, world) as client:
        run_all(clean, client)

    class Crash(RuntimeError):
        pass

    def crashing(stream, after_pages: int):
        def read(since, resume):
            for n, page in enumerate(stream.read(since, resume)):
                if n == after_pages:
                    raise Crash(f"killed after {after_pages} pages")
                yield page
        return dataclasses.replace(stream, read=read)

    store = RawStore(tmp_path / "crashed.duckdb")
    with client_for(base, world) as client:
        for stream in streams(client):
            with pytest.raises(Crash):
                run_stream(store, crashing(stream, 3))
            assert store.state("amazon", stream.entity).resume is not None
    with client_for(base, world) as client:
        resumed = run_all(store, client)
    assert all(r.resumed for r in resumed.values())
    # the settlement streams skip the reports landed before the crash
    assert resumed["settlements"].records == clean.count("amazon", "settlements") - 3
    for entity in ENTITIES:
        assert rows(store, entity) == rows(clean, entity), entity
        assert store.state("amazon", entity).resume is None
    clean.close()
    store.close()


def test_a_wrong_credential_raises_source_error_without_the_secret(live, tmp_path):
    base, app, world = live
    secret = "wrong-secret-DO-NOT-LEAK-1234"
    store = RawStore(tmp_path / "wh.duckdb")
    with client_for(base, world, overrides={"client_secret": secret}) as client:
        with pytest.raises(SourceError) as caught:
            run_stream(store, streams(client)[0])
        assert client.lwa.stats["requests"] == 1  # a refused credential is not retried
    message = str(caught.value)
    assert message.startswith("amazon: POST ") and "/auth/o2/token" in message and "401" in message
    assert secret not in message and secret not in repr(caught.value)
    settings = settings_for(base, client_secret=secret)
    assert secret not in repr(settings) and settings.refresh_token not in repr(settings)
    store.close()


def test_an_expired_access_token_is_refreshed_once_and_the_run_goes_on(live, tmp_path):
    base, app, world = live
    store = RawStore(tmp_path / "wh.duckdb")
    with client_for(base, world) as client:
        run_all(store, client, only=("orders",))
        tokens = emulator(app).state.lwa_tokens
        for token in list(tokens.expires_at):
            tokens.expires_at[token] = time.time() - 1  # Amazon answers 403 Unauthorized from now on
        world.set_clock(world.now() + timedelta(days=1))
        run_all(store, client, only=("orders",))
        assert client.token.exchanges == 2
    assert set(keys(store, "orders")) == set(world_order_states(world, view_of(world.now())))
    store.close()


def test_an_expired_document_url_is_fetched_again(live, tmp_path):
    base, app, world = live
    signer = emulator(app).state.document_signer
    original = signer.url
    issued: list[str] = []

    def stale_first(document_id, issued_at=None):
        # the first URL of each document is already past its five minutes
        stale = document_id not in issued
        issued.append(document_id)
        return original(document_id, time.time() - 400 if stale else issued_at)

    signer.url = stale_first
    store = RawStore(tmp_path / "wh.duckdb")
    with client_for(base, world) as client:
        run_all(store, client, only=("settlements",))
    reports = set(issued)
    assert reports and len(issued) == 2 * len(reports)
    assert store.count("amazon", "settlements") == len(reports)
    store.close()


def test_pacing_waits_for_tokens_instead_of_bouncing_off_the_limit(world, tmp_path, monkeypatch):
    scale = 400.0  # searchOrders: burst 20, then ~2.2 a second
    monkeypatch.setenv("CLOSELOOP_RATE_LIMIT_SCALE", str(scale))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with serve(world, throttle=ThrottleSettings(enabled=True, scale=scale), sources=("amazon",)) as (base, app):
        store = RawStore(tmp_path / "wh.duckdb")
        with client_for(base, world, sleep=sleep) as client:
            client.pacers.buckets["searchOrders"].tokens = 2.0  # most of the burst already spent
            run_all(store, client, only=("orders",))
            pages = client.stats["requests"]
            assert pages > 5
            assert waits, "the pacer should have waited for searchOrders tokens"
            assert client.stats["throttled"] <= 2
            assert client.pacers.buckets["searchOrders"].rate == pytest.approx(0.0056 * scale)
    assert set(keys(store, "orders")) == set(world_order_states(world, view_of(world.now())))
    store.close()


# ---------------------------------------------------------------------- settings
def test_settings_name_the_missing_variable_and_check_backfill_days(live):
    base = live[0]
    env = connector_settings(base, SandboxCredentials(SMALL_SEED))
    assert AmazonSettings.from_env(env).backfill_days == 730
    with pytest.raises(ValueError, match="AMAZON_REFRESH_TOKEN"):
        AmazonSettings.from_env({k: v for k, v in env.items() if k != "AMAZON_REFRESH_TOKEN"})
    with pytest.raises(ValueError, match="AMAZON_BACKFILL_DAYS"):
        AmazonSettings.from_env({**env, "AMAZON_BACKFILL_DAYS": "900"})
    assert AmazonSettings.from_env({**env, "AMAZON_BACKFILL_DAYS": "30"}).backfill_days == 30


# ---------------------------------------------------------------------- the flat-file parser
REPORT = {"reportId": "900001", "reportDocumentId": "amzn1.spdoc.test", "createdTime": "2026-03-02T06:00:00+00:00",
          "reportType": "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"}
HEADER_23 = ("settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
             "transaction-type\torder-id\tmerchant-order-id\tadjustment-id\tshipment-id\tmarketplace-name\t"
             "amount-type\tamount-description\tamount\tfulfillment-id\tposted-date\tposted-date-time\t"
             "order-item-code\tmerchant-order-item-id\tmerchant-adjustment-item-id\tsku\tquantity-purchased")


def flat_file(total: str, amounts: list[str], start="2026-02-01 00:00:00 UTC", posted=("", "")) -> str:
    summary = ["555", start, "2026-02-15T00:00:00-08:00", "17.02.2026", total, "EUR"] + [""] * 17
    lines = [HEADER_23, "\t".join(summary)]
    for n, amount in enumerate(amounts, start=1):
        cells = ["555", "", "", "", "", "", "Order", f"302-000000{n}-1", "", "", "S1", "Amazon.de",
                 "ItemPrice", "Principal", amount, "AFN", posted[0], posted[1], f"item{n}", "", "", "SKU-1", "1"]
        lines.append("\t".join(cells))
    return "\r\n".join(lines) + "\r\n"


def test_a_settlement_whose_lines_do_not_sum_to_its_total_is_quarantined_whole():
    parsed = parse_settlement_report(flat_file("10.00", ["7.50", "-1.23", "3.00"]), REPORT)
    assert parsed.problem and "sum to 9.27, not its total-amount 10.00" in parsed.problem
    settlements = shape_page(settlement_records(parsed), SETTLEMENT_SHAPE)
    lines = shape_page(settlement_line_records(parsed), SETTLEMENT_LINE_SHAPE)
    assert settlements.valid.height == 0 and lines.valid.height == 0
    assert [r.record_id for r in settlements.rejected] == ["555"]
    assert [r.record_id for r in lines.rejected] == ["555:1", "555:2", "555:3"]
    for rejected in settlements.rejected + lines.rejected:
        assert "settlement 555 (report 900001) quarantined whole" in rejected.reason
        assert "sum to 9.27" in rejected.reason


def test_the_parser_reads_the_date_and_amount_forms_seen_in_real_files():
    text = flat_file("9,27", ["7,50", "-1,23", "3,00"], start="01.02.2026", posted=("02/03/26", ""))
    parsed = parse_settlement_report(text, REPORT)
    assert parsed.problem is None
    settlement = shape_page(settlement_records(parsed), SETTLEMENT_SHAPE).valid.row(0, named=True)
    assert settlement["total_amount"] == pytest.approx(9.27) and settlement["currency"] == "EUR"
    assert settlement["start_at"] == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert settlement["end_at"] == datetime(2026, 2, 15, 8, tzinfo=timezone.utc)
    assert settlement["deposit_at"] == datetime(2026, 2, 17, tzinfo=timezone.utc)
    assert settlement["report_created_at"] == datetime(2026, 3, 2, 6, tzinfo=timezone.utc)
    lines = shape_page(settlement_line_records(parsed), SETTLEMENT_LINE_SHAPE)
    assert not lines.rejected
    first = lines.valid.row(0, named=True)
    assert first["posted_at"] == datetime(2026, 2, 3, tzinfo=timezone.utc)  # posted-date when no posted-date-time
    assert first["promotion_id"] is None and first["quantity_purchased"] == 1 and first["amount"] == pytest.approx(7.5)
    assert lines.valid["amount"].to_list() == pytest.approx([7.5, -1.23, 3.0])

    with_time = parse_settlement_report(flat_file("1.00", ["1.00"], posted=("02/03/26", "2026-02-03 10:11:12 UTC")), REPORT)
    line = shape_page(settlement_line_records(with_time), SETTLEMENT_LINE_SHAPE).valid.row(0, named=True)
    assert line["posted_at"] == datetime(2026, 2, 3, 10, 11, 12, tzinfo=timezone.utc)

    pacific = parse_settlement_report(flat_file("1.00", ["1.00"], posted=("", "2026-02-03 10:11:12 PST")), REPORT)
    line = shape_page(settlement_line_records(pacific), SETTLEMENT_LINE_SHAPE).valid.row(0, named=True)
    assert line["posted_at"] == datetime(2026, 2, 3, 18, 11, 12, tzinfo=timezone.utc)
    unknown = parse_settlement_report(flat_file("1.00", ["1.00"], posted=("", "2026-02-03 10:11:12 XYZ")), REPORT)
    rejected = shape_page(settlement_line_records(unknown), SETTLEMENT_LINE_SHAPE).rejected
    assert len(rejected) == 1 and rejected[0].reason.startswith("posted_at: ") and "time zone" in rejected[0].reason


def test_the_parser_refuses_files_it_cannot_trust():
    no_summary = parse_settlement_report(flat_file("1.00", ["1.00"]).replace("\t1.00\tEUR", "\t\tEUR", 1), REPORT)
    assert no_summary.problem and "summary" in no_summary.problem
    no_amount = parse_settlement_report(flat_file("1.00", ["1.00"]).replace("\tamount\t", "\tvalue\t"), REPORT)
    assert no_amount.problem and "no column amount" in no_amount.problem
    assert shape_page(settlement_records(no_amount), SETTLEMENT_SHAPE).rejected
    unreadable = parse_settlement_report(flat_file("1.00", ["1.00", "abc"]), REPORT)
    assert unreadable.problem and "'abc' is not an amount" in unreadable.problem


def test_gzip_documents_are_decompressed():
    text = flat_file("1.00", ["1.00"])
    assert decode_document(gzip.compress(text.encode()), "GZIP") == text
    assert decode_document(text.encode(), "GZIP") == text  # already inflated by Content-Encoding
    assert decode_document(text.encode("cp1252"), None) == text
    assert issubclass(DocumentUrlExpired, Exception)
