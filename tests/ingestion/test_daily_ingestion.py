"""The daily ingestion run end to end: ``closeloop run`` against the sandbox over real HTTP.

Every run is a separate ``closeloop run`` process, as the schedule and a user run it, so a
kill -9 is a real kill.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from orchestration.defs.ingestion.sources import SOURCES
from tests.conftest import SMALL_SEED, serve

SCALE = "100"  # the sandbox runs its limits 100x faster and the connectors pace to match
VOLATILE = {"loaded_at", "quarantined_at", "updated_at", "last_completed_at", "runs"}


@pytest.fixture(scope="module")
def live(small_world_path, tmp_path_factory):
    """A throttled sandbox over a private small world, shared by this module's tests, which
    put its clock and faults back as they found them."""
    from tests.conftest import fresh_world

    world = fresh_world(small_world_path, tmp_path_factory.mktemp("ingestion-world"))
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=float(SCALE))) as (base, app):
        env = {**os.environ, **connector_settings(base, SandboxCredentials(SMALL_SEED)), "CLOSELOOP_RATE_LIMIT_SCALE": SCALE}
        env.pop("CLOSELOOP_CRASH_AT", None)
        yield env, world, base


@pytest.fixture
def no_faults(live):
    yield
    httpx.put(f"{live[2]}/_sandbox/faults", json={})


@pytest.fixture(scope="module")
def clean(live, tmp_path_factory):
    """One uninterrupted, fault-free daily run at the clock's start: the reference."""
    env = data_env(live[0], tmp_path_factory.mktemp("clean"), "clean")
    started = time.monotonic()
    out = closeloop_run(env)
    assert out.returncode == 0, out.stderr[-3000:]
    return env, snapshot(env), records_read(out.stderr), time.monotonic() - started


def data_env(env: dict, tmp_path: Path, name: str, **extra) -> dict:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    return {**env, "CLOSELOOP_DATA_DIR": str(folder), "DAGSTER_HOME": str(folder / "dagster"), **extra}


def closeloop_run(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "run", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def warehouse(env: dict) -> Path:
    return Path(env["CLOSELOOP_DATA_DIR"]) / "warehouse.duckdb"


def snapshot(env: dict) -> dict[str, list]:
    """Every raw table's rows (without load times), sorted; the quarantine; the cursors."""
    con = duckdb.connect(str(warehouse(env)), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1").fetchall()]
        out = {}
        for table in tables:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema='raw' and table_name=? order by ordinal_position",
                [table]).fetchall()]
            keep = [c for c in columns if c not in VOLATILE]
            rows = con.execute(f'select {", ".join(chr(34) + c + chr(34) for c in keep)} from raw."{table}"').fetchall()
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def records_read(stderr: str) -> int:
    total = 0
    for line in stderr.splitlines():
        if " records, " in line and not line.startswith(" "):
            total += int(line.split(": ", 1)[1].split(" records")[0].replace(",", ""))
    return total


def expected_tables() -> set[str]:
    system = "xero"
    return {f"{s.name}__{e}" for s in SOURCES if not s.accounting or s.name == system for e in s.entities}


def test_backfill_then_incremental_equals_a_fresh_backfill(live, clean, tmp_path):
    env, world, _ = live
    daily = data_env(env, tmp_path, "daily")
    shutil.copytree(Path(clean[0]["CLOSELOOP_DATA_DIR"]), Path(daily["CLOSELOOP_DATA_DIR"]), dirs_exist_ok=True)
    tables, backfill_reads = clean[1], clean[2]
    assert expected_tables() <= set(tables)
    assert all(tables[t] for t in expected_tables() if not t.endswith("journals")), "an entity landed nothing"

    start = world.now()
    world.set_clock(start + timedelta(days=3))
    try:
        second = closeloop_run(daily)
        assert second.returncode == 0, second.stderr[-3000:]
        assert records_read(second.stderr) < backfill_reads / 3, "the daily run re-read most of the backfill"
        fresh = data_env(env, tmp_path, "fresh")
        assert closeloop_run(fresh).returncode == 0
    finally:
        world.set_clock(start)
    incremental, backfilled = snapshot(daily), snapshot(fresh)
    for table in expected_tables():
        assert incremental[table] == backfilled[table], f"{table}: incremental differs from a fresh backfill"
    assert incremental["_quarantine"] == backfilled["_quarantine"] == []


# The kill test drives the sources whose readers resume in different ways (page numbers,
# next-page links, opaque tokens restarted from the window); each connector's own tests crash
# every one of its streams.
KILL_SELECTION = "group:ingest_xero or group:ingest_shipbob or group:ingest_amazon"


def test_runs_killed_at_random_and_at_chosen_points_end_like_an_uninterrupted_run(live, tmp_path):
    env, world, _ = live
    reference = data_env(env, tmp_path, "reference")
    started = time.monotonic()
    assert closeloop_run(reference, "--select", KILL_SELECTION).returncode == 0
    duration = time.monotonic() - started
    expected = snapshot(reference)

    crashed = data_env(env, tmp_path, "crashed")
    rng = random.Random(20261122)
    # chosen points inside a page's transaction, before it and after it
    for point in ("xero__invoices:2:mid_transaction", "xero__invoices:4:before_transaction",
                  "xero__payments:1:after_commit", "xero__payments:3:mid_transaction"):
        out = closeloop_run({**crashed, "CLOSELOOP_CRASH_AT": point}, "--select", KILL_SELECTION)
        assert out.returncode != 0
    kills = 0
    for _attempt in range(40):  # bounded: a run that finishes before its kill is simply a completed run
        if kills >= 10:
            break
        proc = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run", "--select", KILL_SELECTION], env=crashed,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3 * duration, 0.9 * duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 10
    final = closeloop_run(crashed, "--select", KILL_SELECTION)
    assert final.returncode == 0, final.stderr[-3000:]
    assert snapshot(crashed) == expected


def test_under_fault_injection_ingestion_completes_with_identical_tables(live, clean, no_faults, tmp_path):
    env, world, base = live
    faults = {"seed": 3, "default": {"rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
                                     "rate_timeout": 0.01, "timeout_seconds": 3, "rate_reset": 0.01}}
    assert httpx.put(f"{base}/_sandbox/faults", json=faults).status_code == 200
    faulty = data_env(env, tmp_path, "faulty", CLOSELOOP_HTTP_TIMEOUT="2")
    out = closeloop_run(faulty, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    injected = httpx.get(f"{base}/_sandbox/status").json()["faults_injected"]
    assert sum(sum(kinds.values()) for kinds in injected.values()) >= 50
    assert snapshot(faulty) == clean[1]


def test_bad_records_are_quarantined_with_their_reason_and_the_rest_loads(live, clean, no_faults, tmp_path):
    env, world, base = live
    reference = clean[1]
    assert httpx.put(f"{base}/_sandbox/faults", json={"seed": 5, "default": {"rate_missing_field": 0.02}}).status_code == 200
    damaged = data_env(env, tmp_path, "damaged")
    out = closeloop_run(damaged)
    assert out.returncode == 0, out.stderr[-3000:]
    con = duckdb.connect(str(warehouse(damaged)), read_only=True)
    quarantined = con.execute("select source, entity, record_id, reason from raw._quarantine").fetchall()
    con.close()
    assert quarantined, "no record was quarantined"
    assert all(reason and ":" in reason for *_, reason in quarantined)
    got = snapshot(damaged)
    for table in expected_tables():
        lost = sum(1 for s, e, *_ in quarantined if f"{s}__{e}" == table)
        assert len(got[table]) + lost >= len(reference[table]), table
        assert len(got[table]) >= len(reference[table]) - lost


def test_a_refused_credential_names_the_source_and_hides_the_secret(live, tmp_path):
    env, world, _ = live
    bad = data_env(env, tmp_path, "bad", XERO_CLIENT_SECRET="not-the-secret")
    out = closeloop_run(bad, "--select", "group:ingest_xero or group:ingest_shipbob")
    assert out.returncode == 1
    assert "materialized 4 asset(s)" in out.stderr, "the other source did not carry on"
    assert "xero" in out.stderr and "token" in out.stderr
    assert "not-the-secret" not in out.stderr
    assert env["XERO_CLIENT_SECRET"] not in out.stderr


def _typed_columns(env: dict, prefix: str) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(warehouse(env)), read_only=True)
    try:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name like ? order by table_name, ordinal_position", [f"{prefix}__%"]).fetchall()
    finally:
        con.close()
    out: dict[str, list] = {}
    for table, column, dtype in rows:
        out.setdefault(table.split("__", 1)[1], []).append((column, dtype))
    return out


def test_switching_the_accounting_system_ingests_that_source_with_the_same_shape(live, clean, tmp_path):
    env, world, _ = live
    on_xero = clean[0]
    on_netsuite = data_env(env, tmp_path, "netsuite", ACCOUNTING_SYSTEM="netsuite")
    out = closeloop_run(on_netsuite, "--select", "group:ingest_netsuite")
    assert out.returncode == 0, out.stderr[-3000:]
    xero, netsuite = _typed_columns(on_xero, "xero"), _typed_columns(on_netsuite, "netsuite")
    assert _typed_columns(on_xero, "netsuite") == {} and _typed_columns(on_netsuite, "xero") == {}
    assert set(xero) == set(netsuite) == {"invoices", "credit_notes", "payments", "deposits", "purchase_orders",
                                          "contacts", "items", "journals"}
    assert xero == netsuite
    # the same books, read from either system, hold the same documents
    a = duckdb.connect(str(warehouse(on_xero)), read_only=True)
    b = duckdb.connect(str(warehouse(on_netsuite)), read_only=True)
    try:
        for table, column in (("invoices", "invoice_number"), ("purchase_orders", "po_number")):
            xs = {r[0] for r in a.execute(f"select {column} from raw.xero__{table}").fetchall()}
            ns = {r[0] for r in b.execute(f"select {column} from raw.netsuite__{table}").fetchall()}
            assert xs == ns and xs, table
        xt = a.execute("select sum(total) from raw.xero__invoices").fetchone()[0]
        nt = b.execute("select sum(total) from raw.netsuite__invoices").fetchone()[0]
        assert abs(xt - nt) < 0.01
    finally:
        a.close()
        b.close()
