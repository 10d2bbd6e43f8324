"""``closeloop demo``: the sandbox brand, one daily run, then the Dagster UI, on this machine.

Three processes: the sandbox emulators (``closeloop sandbox serve``), one ``closeloop run``
against them, and ``dagster dev`` over the same data directory. Ctrl-C stops them all.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _wait_for(url: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"closeloop demo: the process serving {url} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"closeloop demo: nothing answered at {url} within {seconds:.0f}s")


def _read_env(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def run_demo(scale: str, seed: int, port: int, ui_port: int, ui: bool) -> int:
    data = Path(os.environ.get("CLOSELOOP_DATA_DIR", "data")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    env_file = Path(".env.sandbox").resolve()
    cli = [sys.executable, "-m", "orchestration.cli"]
    children: list[subprocess.Popen] = []

    def stop(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(143)))
    try:
        print(f"1/3 sandbox: generating the '{scale}' brand (seed {seed}, cached after the first time) and serving "
              f"every emulator on 127.0.0.1:{port}", flush=True)
        # the demo runs the emulators' limits off so the first backfill takes minutes, not hours;
        # the limits themselves are exercised by the tests and 'make bench'
        sandbox = subprocess.Popen(cli + ["sandbox", "serve", "--scale", scale, "--seed", str(seed), "--port", str(port),
                                          "--env-file", str(env_file), "--no-throttle"])
        children.append(sandbox)
        _wait_for(f"http://127.0.0.1:{port}/_sandbox/status", 600, sandbox)
        env = {**os.environ, **_read_env(env_file), "CLOSELOOP_DATA_DIR": str(data)}
        print("2/3 daily run: ingesting every source into the warehouse (the first run is a backfill)", flush=True)
        run = subprocess.run(cli + ["run"], env=env)
        if run.returncode != 0:
            print("closeloop demo: the daily run failed (see above); the sandbox is still serving", file=sys.stderr)
        warehouse = data / "warehouse.duckdb"
        print(f"   warehouse: {warehouse} (open it read-only: duckdb.connect('{warehouse}', read_only=True))", flush=True)
        if not ui:
            return run.returncode
        print(f"3/3 Dagster UI: http://127.0.0.1:{ui_port} (assets, checks, the daily schedule); Ctrl-C stops everything",
              flush=True)
        dagster = subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "dev", "-m", "orchestration.definitions",
                                    "-h", "127.0.0.1", "-p", str(ui_port)], env={**env, "DAGSTER_HOME": str(data / "dagster")})
        children.append(dagster)
        _wait_for(f"http://127.0.0.1:{ui_port}/server_info", 180, dagster)
        print(f"closeloop demo is up: sandbox http://127.0.0.1:{port}/_sandbox/status, Dagster http://127.0.0.1:{ui_port}",
              flush=True)
        dagster.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
