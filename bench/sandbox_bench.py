"""Sandbox figures: world generation time and memory, emulator throughput with throttling off."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import figure

_GENERATE = """
import json, resource, sys, time
from pathlib import Path
from connectors.sandbox.generator import generate_world
started = time.perf_counter()
path = generate_world(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), force=True)
seconds = time.perf_counter() - started
orders = json.loads((path / 'meta.json').read_text())['counts']['orders']
print(json.dumps({'seconds': seconds, 'orders': orders, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(scale: str, seed: int, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _GENERATE, scale, str(seed), str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as tmp:
        demo = generate("demo", 7, Path(tmp))
        missed += figure("demo world generation", demo["seconds"], "s", 60, note=f"{demo['orders']:,} orders, peak {demo['peak_mb']:,.0f} MB")
        if not quick:
            large = generate("large", 7, Path(tmp))
            missed += figure("large world generation", large["seconds"], "s", 600, note=f"{large['orders']:,} orders")
            missed += figure("large world generation peak memory", large["peak_mb"], "MB", 4096)
        from .emulator_throughput import throughput

        for source, pages_per_second, records in throughput(Path(tmp) / "sandbox" / "demo-s7"):
            missed += figure(f"emulator throughput {source}", pages_per_second, "pages/s", note=f"throttling off, {records} records per page")
    return missed
