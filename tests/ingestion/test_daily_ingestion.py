"""The daily ingestion run end to end: ``closeloop run`` against the sandbox over real HTTP.

Every run is a separate ``closeloop run`` process, as the schedule and a user run it, so a
kill -9 is a real kill.
"""
from __future__ import annotations

import os
import random
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

SCALE = "40"  # the sandbox runs its limits 40x faster and the connectors pace to match
VOLATILE = {"loaded_at", "quarantined_at", "updated_at", "last_completed_at", "runs"}


@pytest.fixture
def live(world, tmp_path):
    """A throttled sandbox over a private small world, and the environment pointing at it."""
    with serve(world, throttle=ThrottleSettings(enabled=True, scale=float(SCALE))) as (base, app):
        env = {**os.environ, **connector_settings(base, SandboxCredentials(SMALL_SEED)), "CLOSELOOP_RATE_LIMIT_SCALE": SCALE}
        env.pop("CLOSELOOP_CRASH_AT", None)
        yield env, world, base


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


def test_backfill_then_incremental_equals_a_fresh_backfill(live, tmp_path):
    env, world, _ = live
    daily = data_env(env, tmp_path, "daily")
    first = closeloop_run(daily)
    assert first.returncode == 0, first.stderr[-3000:]
    backfill_reads = records_read(first.stderr)
    tables = snapshot(daily)
    assert expected_tables() <= set(tables)
    assert all(tables[t] for t in expected_tables() if not t.endswith("journals")), "an entity landed nothing"

    world.set_clock(world.now() + timedelta(days=3))
    second = closeloop_run(daily)
    assert second.returncode == 0, second.stderr[-3000:]
    assert records_read(second.stderr) < backfill_reads / 3, "the daily run re-read most of the backfill"

    fresh = data_env(env, tmp_path, "fresh")
    assert closeloop_run(fresh).returncode == 0
    incremental, backfilled = snapshot(daily), snapshot(fresh)
    for table in expected_tables():
        assert incremental[table] == backfilled[table], f"{table}: incremental differs from a fresh backfill"
    assert incremental["_quarantine"] == backfilled["_quarantine"] == []


def test_runs_killed_at_random_and_at_chosen_points_end_like_an_uninterrupted_run(live, tmp_path):
    env, world, _ = live
    reference = data_env(env, tmp_path, "reference")
    started = time.monotonic()
    assert closeloop_run(reference).returncode == 0
    duration = time.monotonic() - started
    expected = snapshot(reference)

    crashed = data_env(env, tmp_path, "crashed")
    rng = random.Random(20261122)
    # chosen points inside a page's transaction, before it and after it
    for point in ("xero__invoices:2:mid_transaction", "xero__invoices:4:before_transaction",
                  "xero__payments:1:after_commit", "xero__payments:3:mid_transaction"):
        out = closeloop_run({**crashed, "CLOSELOOP_CRASH_AT": point})
        assert out.returncode != 0
    kills = 0
    while kills < 10:
        proc = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run"], env=crashed,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, max(1.0, duration * 0.9)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    final = closeloop_run(crashed)
    assert final.returncode == 0, final.stderr[-3000:]
    assert snapshot(crashed) == expected


def test_under_fault_injection_ingestion_completes_with_identical_tables(live, tmp_path):
    env, world, base = live
    clean = data_env(env, tmp_path, "clean")
    assert closeloop_run(clean).returncode == 0
    faults = {"seed": 3, "default": {"rate_429": 0.2, "rate_5xx": 0.05, "rate_truncate": 0.03, "rate_repeat": 0.05,
                                     "rate_timeout": 0.01, "timeout_seconds": 3, "rate_reset": 0.01}}
    assert httpx.put(f"{base}/_sandbox/faults", json=faults).status_code == 200
    faulty = data_env(env, tmp_path, "faulty", CLOSELOOP_HTTP_TIMEOUT="2")
    out = closeloop_run(faulty)
    assert out.returncode == 0, out.stderr[-3000:]
    injected = httpx.get(f"{base}/_sandbox/status").json()["faults_injected"]
    assert sum(sum(kinds.values()) for kinds in injected.values()) >= 5
    assert snapshot(faulty) == snapshot(clean)


def test_bad_records_are_quarantined_with_their_reason_and_the_rest_loads(live, tmp_path):
    env, world, base = live
    clean = data_env(env, tmp_path, "clean")
    assert closeloop_run(clean).returncode == 0
    reference = snapshot(clean)
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
    out = closeloop_run(bad)
    assert out.returncode == 1
    assert "xero" in out.stderr and "token" in out.stderr
    assert "not-the-secret" not in out.stderr
    assert env["XERO_CLIENT_SECRET"] not in out.stderr
