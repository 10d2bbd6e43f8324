"""Shared fixtures: a generated small world (once per test session) and live sandbox servers."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

REPO = Path(__file__).resolve().parents[1]
SPECS = Path(os.environ.get("CLOSELOOP_SPECS_DIR", REPO.parent / "shared" / "reference" / "specs"))
SMALL_SEED = 1


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    if not (SPECS / "xero_accounting.yaml").exists():
        pytest.fail(f"official API specs not found in {SPECS}; set CLOSELOOP_SPECS_DIR")
    return SPECS


@pytest.fixture(scope="session")
def small_world_path(tmp_path_factory) -> Path:
    """The small world, generated once per session (per xdist worker) into a temp folder."""
    from connectors.sandbox.generator import generate_world

    root = tmp_path_factory.mktemp("worlds")
    return generate_world("small", SMALL_SEED, root)


def fresh_world(template: Path, tmp_path: Path):
    """A private copy of a generated world (own clock, own writes) for one test."""
    from connectors.sandbox.world import World

    target = tmp_path / template.name
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("writes.sqlite*", "clock.json"))
    return World(target)


@pytest.fixture
def world(small_world_path, tmp_path):
    return fresh_world(small_world_path, tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(world, throttle=None, faults=None, sources=None):
    """Run the sandbox on 127.0.0.1 in a background thread; yields (base_url, app)."""
    from connectors.sandbox.emulators.faults import SOURCES
    from connectors.sandbox.emulators.throttle import ThrottleSettings
    from connectors.sandbox.server import build_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(world, base, throttle or ThrottleSettings(), faults, tuple(sources or SOURCES))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox server did not start")
        time.sleep(0.02)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.ctx.store.close()


@pytest.fixture
def sandbox(world):
    """A live sandbox over a private small world with throttling off: (base_url, ctx)."""
    from connectors.sandbox.emulators.throttle import ThrottleSettings

    with serve(world, throttle=ThrottleSettings(enabled=False)) as (base, app):
        yield base, app.state.ctx


@pytest.fixture
def http():
    with httpx.Client(timeout=30) as client:
        yield client
