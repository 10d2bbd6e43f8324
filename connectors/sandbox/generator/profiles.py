"""World sizes: how many SKUs, how long, how busy, how often things go wrong."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class ScaleProfile:
    name: str
    products: int  # each has 1-4 variants; the SKU count follows
    history_days: int  # days before the clock starts
    future_days: int  # days after the clock start that 'sandbox advance' reveals
    shopify_orders_per_day: float  # average over the year, before seasonality
    amazon_orders_per_day: float
    discrepancy_rate: float  # per order and per type of order-level discrepancy
    min_per_type: int  # at least this many of each non-order discrepancy (payouts, SKUs, POs)
    flush_days: int  # days of records buffered before a parquet part is written


# Every world's clock starts at the same instant so that worlds of different seeds line up.
CLOCK_START = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)

PROFILES = {
    "small": ScaleProfile("small", products=20, history_days=120, future_days=30,
                          shopify_orders_per_day=38, amazon_orders_per_day=14,
                          discrepancy_rate=0.0045, min_per_type=3, flush_days=400),
    "demo": ScaleProfile("demo", products=60, history_days=730, future_days=30,
                         shopify_orders_per_day=95, amazon_orders_per_day=40,
                         discrepancy_rate=0.0012, min_per_type=4, flush_days=400),
    "large": ScaleProfile("large", products=240, history_days=730, future_days=30,
                          shopify_orders_per_day=960, amazon_orders_per_day=400,
                          discrepancy_rate=0.0004, min_per_type=6, flush_days=31),
}


def profile(scale: str) -> ScaleProfile:
    try:
        return PROFILES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(PROFILES)}") from None
