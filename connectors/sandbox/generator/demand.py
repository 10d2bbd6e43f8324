"""Expected daily demand per SKU and channel: trend, weekly and yearly seasonality, the
Black Friday / Cyber Monday peak, promotions and launch ramps."""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np

from .calendar import black_friday
from .catalog import Catalog, Promotion

SHOPIFY_WEEKDAY = np.array([1.02, 0.97, 0.95, 0.96, 1.0, 1.08, 1.12])
AMAZON_WEEKDAY = np.array([1.0, 0.98, 0.98, 0.99, 1.0, 1.03, 1.05])


def peak_factor(day: date) -> float:
    bf = black_friday(day.year)
    offset = (day - bf).days
    return {-1: 1.5, 0: 3.0, 1: 2.0, 2: 1.8, 3: 2.6, 4: 1.4}.get(offset, 1.2 if -8 <= offset < -1 else 1.0)


class DemandModel:
    def __init__(self, catalog: Catalog, start: date):
        self.catalog = catalog
        self.start = start
        skus = catalog.skus
        self.base = np.array([s.base_rate for s in skus])
        self.trend = np.array([s.trend for s in skus])
        self.amazon_share = np.array([s.amazon_share for s in skus])
        self.peak_doy = np.array([(date(2001, s.peak_month, 15) - date(2001, 1, 1)).days if s.peak_month else -1 for s in skus])
        self.launched = [s.launched for s in skus]
        self.discontinued = [s.discontinued for s in skus]
        self.categories = [s.category for s in skus]
        self.sku_codes = [s.sku for s in skus]

    def active_promotions(self, day: date, channel: str) -> list[Promotion]:
        return [p for p in self.catalog.promotions
                if p.starts_on <= day <= p.ends_on and p.channel in (channel, "all")]

    def promo_for(self, index: int, promos: list[Promotion]) -> Promotion | None:
        for p in promos:
            if p.scope == "all" or (p.scope == "product_type" and self.categories[index] == p.scope_value) \
                    or (p.scope == "sku" and self.sku_codes[index] == p.scope_value):
                return p
        return None

    def rates(self, day: date, channel: str) -> tuple[np.ndarray, list[Promotion | None]]:
        """Expected units per SKU for one channel on one day, and the promotion each SKU is under."""
        years = (day - self.start).days / 365.0
        doy = (day - date(day.year, 1, 1)).days
        seasonal = np.where(self.peak_doy >= 0, 1.0 + 0.35 * np.cos(2 * math.pi * (doy - self.peak_doy) / 365.0), 1.0)
        q4 = 1.2 if day.month in (11, 12) else 1.0
        weekday = (SHOPIFY_WEEKDAY if channel == "shopify" else AMAZON_WEEKDAY)[day.weekday()]
        share = self.amazon_share if channel == "amazon" else 1.0 - self.amazon_share
        rate = self.base * share * np.power(1.0 + self.trend.clip(-0.5, 1.0), years) * seasonal * q4 * weekday * peak_factor(day)
        promos = self.active_promotions(day, channel)
        applied: list[Promotion | None] = [None] * len(rate)
        if promos:
            for i in range(len(rate)):
                p = self.promo_for(i, promos)
                if p is not None:
                    applied[i] = p
                    rate[i] *= 1.0 + 3.0 * p.discount_pct
        for i in range(len(rate)):
            launched, gone = self.launched[i], self.discontinued[i]
            if day < launched or (gone is not None and day > gone):
                rate[i] = 0.0
            elif (day - launched).days < 30:
                rate[i] *= 0.3 + 0.7 * (day - launched).days / 30.0
        return rate, applied
