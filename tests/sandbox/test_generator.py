"""The synthetic brand: deterministic, internally consistent, and its ground truth exact."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import polars as pl
import pytest

from connectors.sandbox.generator import generate_world
from connectors.sandbox.generator.calendar import add_business_days, black_friday, is_business_day, us_holidays
from connectors.sandbox.world import SCHEMA, World

from .world_audit import audit, truth_keys

CONTRACT_TYPES = {
    "unfulfilled_past_sla", "short_shipped", "over_shipped", "wrong_item_shipped", "shipped_after_cancellation",
    "no_carrier_scan", "lost_in_transit", "returned_to_sender", "payment_not_settled", "settlement_amount_mismatch",
    "fee_anomaly", "refund_not_settled", "chargeback", "payout_not_deposited", "not_invoiced", "invoice_amount_mismatch",
    "duplicate_invoice", "inventory_mismatch", "po_receipt_mismatch",
}


@pytest.fixture(scope="module")
def small(small_world_path) -> World:
    return World(small_world_path)


def _digest(path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.parquet")) + [path / "meta.json"]:
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_and_scale_give_byte_identical_worlds(tmp_path):
    a = generate_world("small", 5, tmp_path / "a")
    b = generate_world("small", 5, tmp_path / "b")
    c = generate_world("small", 6, tmp_path / "c")
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_generation_is_cached_by_scale_and_seed(small_world_path):
    before = (small_world_path / "meta.json").stat().st_mtime_ns
    again = generate_world("small", 1, small_world_path.parents[1])
    assert again == small_world_path
    assert (small_world_path / "meta.json").stat().st_mtime_ns == before


def test_bad_scale_or_seed_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        generate_world("huge", 1, tmp_path)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        generate_world("small", -3, tmp_path)


def test_every_table_has_exactly_the_documented_columns_and_types(small):
    for name, columns in SCHEMA.items():
        frame = small.table(name)
        assert frame.columns == list(columns), name
        for column, (dtype, _) in columns.items():
            assert frame.schema[column] == dtype, f"{name}.{column}: {frame.schema[column]} != {dtype}"


def test_small_world_size_matches_its_profile(small):
    skus = small.variants.filter(~pl.col("is_bundle"))
    assert 32 <= skus.height <= 60
    assert small.variants.filter(pl.col("is_bundle")).height >= 1
    days = (small.meta.clock_start - small.meta.start).days
    assert 115 <= days <= 125
    assert small.orders.filter(pl.col("channel") == "amazon")["fulfillment_channel"].unique().sort().to_list() == ["AFN", "MFN"]


def test_each_payout_equals_the_sum_of_its_balance_transactions(small):
    bts = small.balance_transactions
    assert (bts["net_cents"] == bts["amount_cents"] - bts["fee_cents"]).all()
    sums = bts.filter(pl.col("type") != "payout").group_by("payout_id").agg(pl.col("net_cents").sum().alias("net"))
    joined = small.payouts.join(sums, on="payout_id", how="left")
    assert joined.height == small.payouts.height
    assert (joined["net"] == joined["amount_cents"]).all()
    payout_rows = bts.filter(pl.col("type") == "payout").join(small.payouts, on="payout_id")
    assert (payout_rows["amount_cents"] == -payout_rows["amount_cents_right"]).all()
    summary = small.payouts.select(
        (pl.sum_horizontal(pl.col("^.*_gross_cents$")) - pl.sum_horizontal(pl.col("^.*_fee_cents$"))).alias("net"), "amount_cents")
    assert (summary["net"] == summary["amount_cents"]).all()
    assert (small.payouts["paid_at"] > small.payouts["created_at"]).all()
    assert all(is_business_day(d) for d in small.payouts["payout_date"].to_list())


def test_reserves_are_held_and_released(small):
    reserves = small.balance_transactions.filter(pl.col("type") == "reserve")
    assert reserves.height == 2
    assert reserves["amount_cents"].sum() == 0


def test_each_settlement_sums_to_its_total_and_one_is_negative(small):
    sums = small.settlement_lines.group_by("settlement_id").agg(pl.col("amount_cents").sum().alias("lines"))
    joined = small.settlements.join(sums, on="settlement_id")
    assert joined.height == small.settlements.height
    assert (joined["lines"] == joined["total_cents"]).all()
    assert (small.settlements["total_cents"] < 0).any()
    spans = small.settlements.select((pl.col("end_at") - pl.col("start_at")).dt.total_days().alias("days"))
    assert spans["days"].unique().to_list() == [14]
    kinds = set(small.settlement_lines["transaction_type"].unique().to_list())
    assert {"Order", "Refund", "ServiceFee", "other-transaction", "Chargeback Refund"} <= kinds


def test_3pl_inventory_is_never_negative_and_stock_outs_censor_demand(small):
    inv = small.inventory_daily
    assert inv["on_hand"].min() >= 0
    assert inv["fulfillable"].min() >= 0
    assert (inv["fulfillable"] == inv["on_hand"] - inv["committed"]).all()
    assert inv.filter(pl.col("fulfillable") == 0).height > 0, "no stock-out anywhere: demand is not censored"
    assert set(inv["sku"].unique().to_list()) == set(small.variants.filter(~pl.col("is_bundle"))["sku"].to_list())


def test_order_totals_are_the_sum_of_their_parts(small):
    lines = small.order_lines.join(small.orders.select("order_key", "created_at"), on="order_key")
    original = lines.filter(pl.col("added_at") == pl.col("created_at")).group_by("order_key").agg(
        (pl.col("unit_price_cents") * pl.col("quantity") - pl.col("discount_cents")).sum().alias("subtotal"),
        pl.col("tax_cents").sum().alias("tax"))
    joined = small.orders.join(original, on="order_key")
    assert (joined["subtotal"] == joined["subtotal_cents"]).all()
    assert (joined["tax"] == joined["total_tax_cents"]).all()
    assert (joined["total_cents"] == joined["subtotal_cents"] + joined["shipping_cents"] + joined["total_tax_cents"]).all()
    foreign = small.orders.filter(pl.col("presentment_currency") != "USD")
    assert foreign.height > 0
    assert ((foreign["presentment_total_cents"] - (foreign["total_cents"] * foreign["fx_rate"]).round()).abs() <= 1).all()


def test_invoices_add_up_and_reference_the_channel_order(small):
    sums = small.invoice_lines.group_by("invoice_uuid").agg(
        pl.col("line_amount_cents").sum().alias("sub"), pl.col("tax_cents").sum().alias("tax"))
    joined = small.invoices.join(sums, on="invoice_uuid")
    assert joined.height == small.invoices.height
    assert (joined["sub"] == joined["subtotal_cents"]).all()
    assert (joined["total_cents"] == joined["subtotal_cents"] + joined["tax_cents"]).all()
    refs = small.invoices.join(small.orders.select("order_key", "channel_order_id"), on="order_key")
    assert (refs["channel_order_id"] == refs["channel_order_id_right"]).all()
    assert small.invoices["invoice_number"].n_unique() == small.invoices.height


def test_orders_have_the_variety_real_life_has(small):
    o = small.orders
    assert o.filter(pl.col("cancelled_at").is_not_null()).height > 0
    assert small.refunds.height > 0 and small.refund_lines.height > 0
    partial = small.refunds.join(o.select("order_key", "total_cents"), on="order_key").filter(pl.col("amount_cents") < pl.col("total_cents"))
    assert partial.height > 0
    edited = small.order_lines.join(o.select("order_key", "created_at"), on="order_key").filter(pl.col("added_at") > pl.col("created_at"))
    assert edited.height > 0
    split = small.shipments.group_by("order_key").len().filter(pl.col("len") > 1)
    assert split.height > 0
    assert o.filter(pl.col("discount_code").is_not_null()).height > 0
    assert small.credit_notes.height > 0
    statuses = set(small.tracking_events["status"].unique().to_list())
    assert {"pre_transit", "in_transit", "out_for_delivery", "delivered", "return_to_sender"} <= statuses


def test_events_follow_each_other_in_time(small):
    s = small.shipments.join(small.orders.select("order_key", "created_at"), on="order_key")
    assert (s["shipped_at"] > s["created_at_right"]).all()
    assert (s["shipped_at"] > s["created_at"]).all()
    ev = small.tracking_events.sort("tracking_code", "seq")
    ordered = ev.group_by("tracking_code").agg((pl.col("occurred_at").diff().dt.total_seconds() >= 0).all().alias("ok"))
    assert ordered["ok"].all()
    ro = small.receiving_orders
    assert ((ro["arrived_at"] > ro["created_at"]) & (ro["completed_at"] > ro["arrived_at"])).all()


def test_demand_has_a_black_friday_peak(tmp_path):
    world = World(generate_world("small", 1, tmp_path))
    bf = black_friday(2026)
    daily = world.orders.group_by(pl.col("created_at").dt.date().alias("day")).len()
    peak = daily.filter(pl.col("day") == bf)["len"].item()
    before = daily.filter((pl.col("day") >= bf - timedelta(days=35)) & (pl.col("day") < bf - timedelta(days=7)))["len"].mean()
    assert peak > 1.8 * before


def test_every_exception_type_is_present_at_the_clock(small):
    due = truth_keys(small, small.meta.clock_start)
    assert {k[0] for k in due} == CONTRACT_TYPES


@pytest.mark.parametrize("days_from_clock", [-50, 0, 20])
def test_each_injected_discrepancy_really_is_one_and_nothing_else_is(small, days_from_clock):
    now = small.meta.clock_start + timedelta(days=days_from_clock)
    found = audit(small, now)
    injected_ever = truth_keys(small)
    due = truth_keys(small, now)
    assert found - injected_ever == set(), "the audit found problems nobody injected"
    assert due - found == set(), "injected discrepancies the audit cannot see"


def test_business_calendar_knows_weekends_and_holidays():
    from datetime import date

    assert date(2026, 11, 26) in us_holidays(2026)  # Thanksgiving
    assert not is_business_day(date(2026, 11, 26))
    assert add_business_days(date(2026, 11, 25), 1) == date(2026, 11, 27)
    assert add_business_days(date(2026, 12, 25), 0) == date(2026, 12, 28)
    assert black_friday(2026) == date(2026, 11, 27)
