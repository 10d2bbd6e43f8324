"""The closeloop sandbox command line, run as a user runs it."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CLI = [sys.executable, "-m", "orchestration.cli"]


def run(args, data_dir, **kw):
    env = {**os.environ, "CLOSELOOP_DATA_DIR": str(data_dir)}
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=300, **kw)


def test_help_says_what_each_command_does(tmp_path):
    out = run(["sandbox", "--help"], tmp_path)
    assert out.returncode == 0
    for word in ("serve", "advance", "truth", "generate"):
        assert word in out.stdout


def test_a_bad_argument_gets_one_line_naming_it(tmp_path):
    out = run(["sandbox", "serve", "--scale", "huge"], tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scale" in lines[0] and "huge" in lines[0]
    out = run(["sandbox", "advance", "--days", "-2", "--scale", "small", "--seed", "1"], tmp_path)
    assert out.returncode != 0 and "--days" in out.stderr


def test_advance_and_truth_follow_the_clock(tmp_path, small_world_path):
    data = small_world_path.parents[1]
    env_data = tmp_path / "data"
    (env_data / "sandbox").mkdir(parents=True)
    os.symlink(small_world_path, env_data / "sandbox" / small_world_path.name)
    first = tmp_path / "truth0.csv"
    assert run(["sandbox", "truth", "--scale", "small", "--seed", "1", "--out", str(first)], env_data).returncode == 0
    rows0 = list(csv.DictReader(first.open()))
    assert rows0 and set(rows0[0]) == {"exception_type", "channel", "channel_order_id", "sku", "reference"}
    try:
        out = run(["sandbox", "advance", "--days", "10", "--scale", "small", "--seed", "1"], env_data)
        assert out.returncode == 0, out.stderr
        later = tmp_path / "truth10.csv"
        assert run(["sandbox", "truth", "--scale", "small", "--seed", "1", "--out", str(later)], env_data).returncode == 0
        rows10 = list(csv.DictReader(later.open()))
        assert len(rows10) > len(rows0)
    finally:
        (small_world_path / "clock.json").unlink(missing_ok=True)
    assert data.exists()


def test_serve_writes_the_env_file_and_answers(tmp_path, small_world_path):
    env_data = tmp_path / "data"
    (env_data / "sandbox").mkdir(parents=True)
    import shutil

    shutil.copytree(small_world_path, env_data / "sandbox" / small_world_path.name)
    port = free_port()
    env_file = tmp_path / ".env.sandbox"
    env = {**os.environ, "CLOSELOOP_DATA_DIR": str(env_data)}
    proc = subprocess.Popen(CLI + ["sandbox", "serve", "--scale", "small", "--seed", "1", "--port", str(port),
                                   "--env-file", str(env_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/_sandbox/status", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status is not None, "sandbox did not answer"
        assert status["scale"] == "small" and status["seed"] == 1
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and not line.startswith("#"))
        for key in ("SHOPIFY_SHOP_URL", "SHOPIFY_ACCESS_TOKEN", "SHIPBOB_BASE_URL", "EASYPOST_BASE_URL", "XERO_BASE_URL",
                    "XERO_TOKEN_URL", "NETSUITE_BASE_URL", "AMAZON_SPAPI_BASE_URL", "AMAZON_LWA_TOKEN_URL", "ACCOUNTING_SYSTEM"):
            assert settings.get(key), key
        assert settings["XERO_BASE_URL"].startswith(f"http://127.0.0.1:{port}/")
        moved = httpx.post(f"http://127.0.0.1:{port}/_sandbox/clock", json={"advance_days": 1}).json()
        assert moved["now"] > status["now"]
        pointer = json.loads((env_data / "sandbox" / "current.json").read_text())
        assert pointer["scale"] == "small"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
