"""The brand's catalog, suppliers and marketing calendar."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from .calendar import black_friday

CATEGORIES = {
    # category: (price range in dollars, weight grams, seasonal peak month or 0, Amazon share)
    "Apparel": ((28, 89), 350, 11, 0.30),
    "Outerwear": ((79, 220), 1100, 12, 0.25),
    "Accessories": ((12, 45), 120, 12, 0.40),
    "Home": ((24, 120), 1400, 11, 0.45),
    "Outdoor": ((35, 160), 900, 6, 0.40),
    "Wellness": ((15, 60), 300, 1, 0.50),
}
ADJECTIVES = ["Everyday", "Trail", "Harbor", "Summit", "Coastal", "Urban", "Alpine", "Meadow", "Canyon", "Nordic",
              "Willow", "Ember", "Cedar", "Drift", "Atlas", "Lumen"]
NOUNS = {
    "Apparel": ["Tee", "Henley", "Crew Sweater", "Jogger", "Polo", "Hoodie"],
    "Outerwear": ["Parka", "Rain Shell", "Puffer Vest", "Field Jacket"],
    "Accessories": ["Beanie", "Scarf", "Tote", "Cap", "Gloves"],
    "Home": ["Throw Blanket", "Candle", "Mug Set", "Linen Sheet Set", "Pillow Cover"],
    "Outdoor": ["Daypack", "Water Bottle", "Camp Chair", "Hammock"],
    "Wellness": ["Yoga Mat", "Foam Roller", "Bath Salts", "Sleep Mask"],
}
SIZES = ["S", "M", "L", "XL"]
COLORS = ["Black", "Navy", "Sand", "Forest", "Rust"]
SUPPLIER_NAMES = [
    ("Pacific Textile Co.", "VN"), ("Northwind Outfitters Ltd.", "CN"), ("Lisbon Knitworks", "PT"),
    ("Oaxaca Home Goods", "MX"), ("Kestrel Manufacturing", "US"), ("Anatolia Cotton Mills", "TR"),
]


def stable_uuid(seed: int, kind: str, key) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"closeloop-sandbox/{seed}/{kind}/{key}"))


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


@dataclass
class Sku:
    index: int
    sku: str
    variant_id: int
    product_id: int
    title: str
    product_title: str
    category: str
    price_cents: int
    unit_cost_cents: int
    weight_grams: int
    supplier_id: int
    case_pack: int
    moq_units: int
    launched: date
    discontinued: date | None
    is_bundle: bool = False
    components: list[tuple[int, int]] = field(default_factory=list)  # (sku index, qty)
    asin: str | None = None
    amazon_fba: bool = False
    fba_fee_cents: int = 0
    referral_rate_bp: int = 1500
    # demand
    base_rate: float = 0.0  # units/day at the start, both channels
    trend: float = 0.0  # growth per year
    amazon_share: float = 0.0
    peak_month: int = 0


@dataclass
class Supplier:
    supplier_id: int
    name: str
    country: str
    lead_mean: float
    lead_sd: float
    moq: int
    terms: int
    cadence: int
    contact_uuid: str
    netsuite_id: int


@dataclass
class Promotion:
    promo_id: str
    name: str
    channel: str
    starts_on: date
    ends_on: date
    discount_pct: float
    scope: str
    scope_value: str | None
    discount_code: str | None


@dataclass
class Catalog:
    suppliers: list[Supplier]
    skus: list[Sku]
    products: list[dict]
    promotions: list[Promotion]


def build_catalog(rng: np.random.Generator, seed: int, n_products: int, start: date, end: date,
                  shopify_per_day: float, amazon_per_day: float) -> Catalog:
    suppliers = []
    for i, (name, country) in enumerate(SUPPLIER_NAMES[: max(3, min(6, n_products // 8 + 2))]):
        domestic = country in ("US", "MX")
        lead = float(rng.uniform(12, 20) if domestic else rng.uniform(35, 60))
        suppliers.append(Supplier(
            supplier_id=9001 + i, name=name, country=country, lead_mean=round(lead, 1),
            lead_sd=round(lead * float(rng.uniform(0.1, 0.25)), 1),
            moq=int(rng.choice([100, 200, 300, 500])), terms=int(rng.choice([30, 45, 60])),
            cadence=int(rng.choice([14, 21, 28])), contact_uuid=stable_uuid(seed, "supplier", i),
            netsuite_id=3100 + i,
        ))

    categories = list(CATEGORIES)
    skus: list[Sku] = []
    products: list[dict] = []
    span = (end - start).days
    for p in range(n_products):
        category = categories[p % len(categories)]
        (lo, hi), grams, peak, amazon_share = CATEGORIES[category]
        name = f"{ADJECTIVES[(p * 7) % len(ADJECTIVES)]} {NOUNS[category][p % len(NOUNS[category])]}"
        product_id = 7_100_000_000_000 + p * 1_000 + 17
        price_dollars = float(rng.uniform(lo, hi))
        price_cents = int(round(price_dollars)) * 100 - 1  # $xx.99
        supplier = suppliers[p % len(suppliers)]
        # a quarter of the products launch during the period; a few are discontinued
        launched = start - timedelta(days=400) if rng.random() > 0.25 else start + timedelta(days=int(rng.uniform(0.1, 0.7) * span))
        discontinued = start + timedelta(days=int(rng.uniform(0.5, 0.9) * span)) if rng.random() < 0.08 else None
        if category in ("Apparel", "Outerwear"):
            options = [f"{s} / {c}" for c in COLORS[: int(rng.integers(1, 3))] for s in SIZES[: int(rng.integers(2, 5))]]
            options = options[: int(rng.integers(2, 5))]
        elif rng.random() < 0.4:
            options = COLORS[: int(rng.integers(2, 4))]
        else:
            options = ["Default Title"]
        popularity = float(rng.lognormal(0.0, 1.1))
        intermittent = rng.random() < 0.3
        listed_on_amazon = rng.random() < 0.75
        fba = listed_on_amazon and rng.random() < 0.6
        products.append(dict(
            product_id=product_id, title=name, handle=name.lower().replace(" ", "-"), product_type=category,
            vendor="Closeloop Goods", tags=f"{category.lower()}, {'new' if launched >= start else 'core'}",
            created_at=at(min(launched, start) - timedelta(days=30), 15), launched_at=at(launched, 5),
            discontinued_at=at(discontinued, 5) if discontinued else None,
        ))
        for v, option in enumerate(options):
            index = len(skus)
            code = "".join(w[0] for w in name.split()).upper()
            sku_code = f"{code}-{p:03d}-{v + 1:02d}"
            unit_cost = int(price_cents * float(rng.uniform(0.22, 0.38)))
            share = 1.0 / len(options) * float(rng.uniform(0.6, 1.4))
            rate = (0.02 + popularity * share) * (0.08 if intermittent else 1.0)
            sku = Sku(
                index=index, sku=sku_code, variant_id=44_000_000_000_000 + index * 100 + 3,
                product_id=product_id, title=option, product_title=name, category=category,
                price_cents=price_cents, unit_cost_cents=unit_cost, weight_grams=int(grams * float(rng.uniform(0.8, 1.2))),
                supplier_id=supplier.supplier_id, case_pack=int(rng.choice([6, 12, 24])) if price_cents < 6000 else int(rng.choice([2, 4, 6])),
                moq_units=supplier.moq, launched=launched, discontinued=discontinued,
                asin=f"B0{(seed * 7919 + index * 104729) % 10**8:08d}" if listed_on_amazon else None,
                amazon_fba=fba, fba_fee_cents=(int(300 + grams * 0.6) if fba else 0),
                referral_rate_bp=1700 if category == "Apparel" else 1500,
                base_rate=rate, trend=float(rng.normal(0.1, 0.25)),
                amazon_share=amazon_share * float(rng.uniform(0.6, 1.4)) if listed_on_amazon else 0.0,
                peak_month=peak,
            )
            skus.append(sku)

    # a few bundles made of two existing single-variant SKUs
    singles = [s for s in skus if s.title == "Default Title"]
    for b in range(min(3, len(singles) // 2)):
        a, c = singles[2 * b], singles[2 * b + 1]
        index = len(skus)
        product_id = 7_100_000_000_000 + (n_products + b) * 1_000 + 17
        name = f"{a.product_title} + {c.product_title} Bundle"
        products.append(dict(
            product_id=product_id, title=name, handle=name.lower().replace(" ", "-").replace("+", "and"),
            product_type="Bundles", vendor="Closeloop Goods", tags="bundle",
            created_at=at(start - timedelta(days=60), 15), launched_at=at(start - timedelta(days=30), 5), discontinued_at=None,
        ))
        skus.append(Sku(
            index=index, sku=f"BNDL-{b + 1:03d}", variant_id=44_000_000_000_000 + index * 100 + 3,
            product_id=product_id, title="Default Title", product_title=name, category="Bundles",
            price_cents=int((a.price_cents + c.price_cents) * 0.85) // 100 * 100 - 1,
            unit_cost_cents=a.unit_cost_cents + c.unit_cost_cents, weight_grams=a.weight_grams + c.weight_grams,
            supplier_id=a.supplier_id, case_pack=1, moq_units=0, launched=start - timedelta(days=30), discontinued=None,
            is_bundle=True, components=[(a.index, 1), (c.index, 1)], base_rate=0.4 * (a.base_rate + c.base_rate) / 2,
            trend=0.1, amazon_share=0.0, peak_month=12,
        ))

    # scale demand so the average day carries the configured number of orders
    units_per_order = 1.45 * 1.25
    total_rate = sum(s.base_rate for s in skus)
    target_units = (shopify_per_day + amazon_per_day) * units_per_order
    for s in skus:
        s.base_rate *= target_units / total_rate
    amazon_units = sum(s.base_rate * s.amazon_share for s in skus)
    if amazon_units > 0:
        factor = amazon_per_day * units_per_order / amazon_units
        for s in skus:
            s.amazon_share = min(0.85, s.amazon_share * factor)

    return Catalog(suppliers=suppliers, skus=skus, products=products, promotions=build_promotions(rng, start, end, categories, skus))


def build_promotions(rng, start: date, end: date, categories: list[str], skus: list[Sku]) -> list[Promotion]:
    promos: list[Promotion] = []
    for year in range(start.year, end.year + 1):
        bf = black_friday(year)
        candidates = [
            ("Black Friday / Cyber Monday", "all", bf - timedelta(days=1), bf + timedelta(days=4), 0.25, "all", None),
            ("Spring Refresh", "shopify", date(year, 4, 10), date(year, 4, 16), 0.15, "product_type", "Home"),
            ("Prime Day", "amazon", date(year, 7, 14), date(year, 7, 15), 0.20, "all", None),
            ("Summer Outdoor Sale", "shopify", date(year, 6, 20), date(year, 6, 27), 0.20, "product_type", "Outdoor"),
            ("New Year Wellness", "all", date(year, 1, 2), date(year, 1, 8), 0.15, "product_type", "Wellness"),
            ("Fall Layers", "shopify", date(year, 10, 1), date(year, 10, 6), 0.15, "product_type", "Outerwear"),
        ]
        for name, channel, s, e, pct, scope, value in candidates:
            if e < start or s > end:
                continue
            pid = f"PROMO-{s.isoformat()}-{len(promos) + 1:02d}"
            code = None if channel == "amazon" else name.upper().replace(" ", "").replace("/", "")[:12] + str(year % 100)
            promos.append(Promotion(pid, name, channel, s, e, pct, scope, value, code))
    # one SKU-level flash sale a quarter
    day = start + timedelta(days=20)
    while day < end:
        s = skus[int(rng.integers(0, len(skus)))]
        if not s.is_bundle:
            promos.append(Promotion(f"PROMO-{day.isoformat()}-{len(promos) + 1:02d}", f"Flash sale {s.sku}", "shopify",
                                    day, day + timedelta(days=2), 0.3, "sku", s.sku, f"FLASH{s.index:03d}{day.month:02d}"))
        day += timedelta(days=91)
    promos.sort(key=lambda p: (p.starts_on, p.promo_id))
    return promos
