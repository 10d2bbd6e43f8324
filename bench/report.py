"""How a benchmark figure is printed: value, target, verdict."""
from __future__ import annotations


def figure(name: str, value: float, unit: str, limit: float | None = None, at_least: bool = False, note: str = "") -> int:
    """Print one figure; returns 1 when it misses its target, else 0."""
    if limit is None:
        print(f"{name}: {value:,.2f} {unit}{('  (' + note + ')') if note else ''}", flush=True)
        return 0
    ok = value >= limit if at_least else value <= limit
    relation = ">=" if at_least else "<"
    print(f"{name}: {value:,.2f} {unit}  (target {relation} {limit:,g} {unit})  {'ok' if ok else 'MISSED'}"
          f"{('  ' + note) if note else ''}", flush=True)
    return 0 if ok else 1
