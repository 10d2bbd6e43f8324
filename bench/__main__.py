"""Run every benchmark and print each figure with its target beside it.

Benchmarks time things; tests never do. Each figure is one line:
``<figure>: <value>  (target <limit>)  ok|MISSED``.
"""
from __future__ import annotations

import argparse
import sys

from . import ingestion_bench, sandbox_bench

SUITES = {"sandbox": sandbox_bench.run, "ingestion": ingestion_bench.run}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="closeloop benchmarks")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only these suites")
    parser.add_argument("--quick", action="store_true", help="skip the slowest figures (the 1M-order world)")
    args = parser.parse_args(argv)
    missed = 0
    for name in args.only or SUITES:
        print(f"== {name}", flush=True)
        missed += SUITES[name](quick=args.quick)
    print(f"== {missed} figure(s) missed their target" if missed else "== every figure within its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
