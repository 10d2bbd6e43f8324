"""The dbt staging layer over a real warehouse: the sandbox, one ``closeloop run``, then dbt.

Once per module: a private small world is served, ingested by ``closeloop run`` (Xero as the
accounting system, then the NetSuite group as well, so both accounting staging folders can be
built), and ``dbt build --select staging`` runs under each accounting system. The tests then
check what dbt built against the raw tables it read.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox.credentials import SandboxCredentials
from connectors.sandbox.emulators.throttle import ThrottleSettings
from connectors.sandbox.server import connector_settings
from tests.conftest import REPO, SMALL_SEED, fresh_world, serve

DBT_PROJECT = REPO / "dbt_project"
DBT = str(Path(sys.executable).parent / "dbt")
RATE_LIMIT_SCALE = "50"  # the connectors pace 50x faster; the sandbox does not throttle (rate limits are tested elsewhere)

# staging model -> the raw table it has one row per record of
ONE_ROW_PER_RAW_RECORD = {
    "stg_shopify__orders": "shopify__orders",
    "stg_shopify__products": "shopify__products",
    "stg_shopify__inventory_levels": "shopify__inventory_levels",
    "stg_shopify__payouts": "shopify__payouts",
    "stg_shopify__balance_transactions": "shopify__balance_transactions",
    "stg_shopify__disputes": "shopify__disputes",
    "stg_amazon__orders": "amazon__orders",
    "stg_amazon__settlements": "amazon__settlements",
    "stg_amazon__settlement_lines": "amazon__settlement_lines",
    "stg_shipbob__orders": "shipbob__orders",
    "stg_shipbob__shipments": "shipbob__shipments",
    "stg_shipbob__inventory": "shipbob__inventory",
    "stg_shipbob__receiving_orders": "shipbob__receiving_orders",
    "stg_easypost__trackers": "easypost__trackers",
    **{f"stg_xero__{e}": f"xero__{e}" for e in ("invoices", "credit_notes", "payments", "deposits", "purchase_orders",
                                                 "contacts", "items", "journals")},
}
ACCOUNTING_ENTITIES = ("invoices", "credit_notes", "payments", "deposits", "purchase_orders", "contacts", "items",
                       "journals")


def _items(value, *path):
    """The list at ``path`` in a JSON document, [] when absent or null (as the staging SQL reads it)."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, list) else []


# unnested staging model -> (raw table, how many child rows one payload holds)
CHILDREN_PER_PAYLOAD = {
    "stg_shopify__order_line_items": ("shopify__orders", lambda p: len(_items(p, "lineItems", "nodes"))),
    "stg_shopify__fulfillments": ("shopify__orders", lambda p: len(_items(p, "fulfillments"))),
    "stg_shopify__fulfillment_line_items": (
        "shopify__orders", lambda p: sum(len(_items(f, "fulfillmentLineItems", "nodes")) for f in _items(p, "fulfillments"))),
    "stg_shopify__refunds": ("shopify__orders", lambda p: len(_items(p, "refunds"))),
    "stg_shopify__refund_line_items": (
        "shopify__orders", lambda p: sum(len(_items(r, "refundLineItems", "nodes")) for r in _items(p, "refunds"))),
    "stg_shopify__order_transactions": ("shopify__orders", lambda p: len(_items(p, "transactions"))),
    "stg_shopify__product_variants": ("shopify__products", lambda p: len(_items(p, "variants", "nodes"))),
    "stg_amazon__order_items": ("amazon__orders", lambda p: len(_items(p, "orderItems"))),
    "stg_shipbob__order_products": ("shipbob__orders", lambda p: len(_items(p, "products"))),
    "stg_shipbob__shipment_products": ("shipbob__shipments", lambda p: len(_items(p, "products"))),
    "stg_shipbob__receiving_order_lines": ("shipbob__receiving_orders", lambda p: len(_items(p, "inventory_quantities"))),
    "stg_easypost__tracking_details": ("easypost__trackers", lambda p: len(_items(p, "tracking_details"))),
    "stg_xero__invoice_lines": ("xero__invoices", lambda p: len(_items(p, "LineItems"))),
}


def closeloop_run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "run", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def dbt(env: dict, *args: str) -> subprocess.CompletedProcess:
    """The dbt CLI on this project, with its artifacts in the test's own folder (not the repo's)."""
    target = Path(env["CLOSELOOP_DATA_DIR"]) / f"dbt-target-{env['ACCOUNTING_SYSTEM']}"
    return subprocess.run([DBT, *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
                           "--target-path", str(target), "--log-path", str(target)],
                          cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=300)


def run_results(env: dict) -> list[dict]:
    path = Path(env["CLOSELOOP_DATA_DIR"]) / f"dbt-target-{env['ACCOUNTING_SYSTEM']}" / "run_results.json"
    return json.loads(path.read_text())["results"]


def read_warehouse(env: dict):
    return duckdb.connect(str(Path(env["CLOSELOOP_DATA_DIR"]) / "warehouse.duckdb"), read_only=True)


def staging_columns(env: dict, model: str) -> list[tuple[str, str]]:
    with read_warehouse(env) as con:
        return con.execute("select column_name, data_type from information_schema.columns "
                           "where table_schema = 'staging' and table_name = ? order by ordinal_position", [model]).fetchall()


@pytest.fixture(scope="module")
def warehouse(small_world_path, tmp_path_factory):
    """A warehouse ingested from the sandbox by ``closeloop run``: every channel source and Xero,
    then NetSuite too (a brand has one, but staging must build over either)."""
    world = fresh_world(small_world_path, tmp_path_factory.mktemp("dbt-world"))
    data_dir = tmp_path_factory.mktemp("dbt-warehouse")
    with serve(world, throttle=ThrottleSettings(enabled=False)) as (base, _):
        env = {**os.environ, **connector_settings(base, SandboxCredentials(SMALL_SEED)),
               "CLOSELOOP_RATE_LIMIT_SCALE": RATE_LIMIT_SCALE, "CLOSELOOP_DATA_DIR": str(data_dir),
               "DAGSTER_HOME": str(data_dir / "dagster"), "ACCOUNTING_SYSTEM": "xero"}
        for name in ("CLOSELOOP_CRASH_AT", "CLOSELOOP_WAREHOUSE", "DBT_PROFILES_DIR"):
            env.pop(name, None)
        xero = closeloop_run(env)
        assert xero.returncode == 0, xero.stderr[-3000:]
        netsuite = closeloop_run({**env, "ACCOUNTING_SYSTEM": "netsuite"}, "--select", "group:ingest_netsuite")
        assert netsuite.returncode == 0, netsuite.stderr[-3000:]
    return env


@pytest.fixture(scope="module")
def built(warehouse):
    """``dbt build --select staging`` under Xero, then NetSuite's part under NetSuite; each system's
    stg_accounting__* columns are recorded while it is the one built."""
    outcome = {}
    # the channel models do not depend on the accounting system: the second build selects only
    # what does (that system's staging and stg_accounting__*, with their tests and unit tests)
    for system, selection in (("xero", "staging"), ("netsuite", "staging.netsuite+")):
        env = {**warehouse, "ACCOUNTING_SYSTEM": system}
        build = dbt(env, "build", "--select", selection)
        outcome[system] = {
            "build": build,
            "results": run_results(env) if build.returncode == 0 else [],
            "accounting_columns": {e: staging_columns(env, f"stg_accounting__{e}") for e in ACCOUNTING_ENTITIES},
        }
    return outcome


@pytest.mark.parametrize("system", ["xero", "netsuite"])
def test_staging_builds_with_its_data_tests_and_unit_tests(built, system):
    build = built[system]["build"]
    assert build.returncode == 0, build.stdout[-4000:]
    results = built[system]["results"]
    by_kind = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        by_kind.setdefault(kind, []).append(result)
        assert result["status"] in ("success", "pass"), (result["unique_id"], result["status"], result.get("message"))
    models = {r["unique_id"].split(".")[-1] for r in by_kind["model"]}
    assert f"stg_{system}__invoices" in models and "stg_accounting__invoices" in models
    unit_tests = {r["unique_id"].split(".")[-1] for r in by_kind["unit_test"]}
    if system == "xero":  # the whole staging layer
        assert "stg_shopify__refund_line_items" in models and "stg_easypost__tracking_details" in models
        assert len(by_kind["test"]) > 150, "the data tests did not run"
        assert {"refunds_without_lines_keep_their_money", "order_line_items_unnest_lines_in_shop_and_presentment_money",
                "tracking_details_are_one_row_per_scan_event", "shipment_products_sum_their_inventory_items"} <= unit_tests
    assert len(by_kind["test"]) > 30, "the accounting data tests did not run"
    assert any(name.startswith(system) for name in unit_tests), f"no {system} unit test ran"


def test_each_staging_model_has_one_row_per_raw_record(built, warehouse):
    with read_warehouse(warehouse) as con:
        for model, table in {**ONE_ROW_PER_RAW_RECORD,
                             **{f"stg_netsuite__{e}": f"netsuite__{e}" for e in ACCOUNTING_ENTITIES}}.items():
            raw = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
            staged = con.execute(f"select count(*) from staging.{model}").fetchone()[0]
            assert staged == raw, f"{model}: {staged} rows, raw.{table} has {raw}"
            assert raw > 0 or table.endswith("journals"), f"raw.{table} is empty: the test proves nothing"


def test_unnested_models_have_one_row_per_element_of_the_payload_arrays(built, warehouse):
    with read_warehouse(warehouse) as con:
        payloads = {}
        for model, (table, count) in CHILDREN_PER_PAYLOAD.items():
            if table not in payloads:
                payloads[table] = [json.loads(p) for (p,) in con.execute(f"select payload from raw.{table}").fetchall()]
            expected = sum(count(payload) for payload in payloads[table])
            staged = con.execute(f"select count(*) from staging.{model}").fetchone()[0]
            assert staged == expected, f"{model}: {staged} rows, the payloads of raw.{table} hold {expected}"
            assert expected > 0, f"{model}: no children in raw.{table}: the test proves nothing"


def test_refunds_without_lines_and_presentment_money_survive_staging(built, warehouse):
    """The edge cases the unit tests describe also hold on the sandbox's real data."""
    with read_warehouse(warehouse) as con:
        refunded = con.execute("select sum(total_refunded) from staging.stg_shopify__refunds").fetchone()[0]
        orders_refunded = con.execute("select sum(total_refunded) from staging.stg_shopify__orders").fetchone()[0]
        assert refunded == orders_refunded, "refunds staged do not add up to what the orders say was refunded"
        foreign = con.execute("select count(*) from staging.stg_shopify__order_line_items "
                              "where presentment_currency <> currency and unit_price_presentment is not null").fetchone()[0]
        assert foreign > 0, "no presentment-currency line reached staging"
        money_type = dict(staging_columns(warehouse, "stg_shopify__orders"))["total_price"]
        assert money_type == "DECIMAL(18,2)"


def test_accounting_staging_has_the_same_columns_under_xero_and_netsuite(built, warehouse):
    for entity in ACCOUNTING_ENTITIES:
        xero, netsuite = built["xero"]["accounting_columns"][entity], built["netsuite"]["accounting_columns"][entity]
        assert xero, f"stg_accounting__{entity} was not built under xero"
        assert xero == netsuite, f"stg_accounting__{entity}: xero {xero} != netsuite {netsuite}"
        assert staging_columns(warehouse, f"stg_xero__{entity}") == staging_columns(warehouse, f"stg_netsuite__{entity}")


def test_accounting_statuses_speak_one_vocabulary(built, warehouse):
    with read_warehouse(warehouse) as con:
        for entity in ("invoices", "purchase_orders", "credit_notes", "payments", "deposits"):
            xero = {r[0] for r in con.execute(f"select distinct status from staging.stg_xero__{entity}").fetchall()}
            netsuite = {r[0] for r in con.execute(f"select distinct status from staging.stg_netsuite__{entity}").fetchall()}
            assert xero and netsuite, entity
            assert all(s == s.lower() for s in xero | netsuite), (entity, xero, netsuite)
        paid = {system: con.execute(f"select count(*) from staging.stg_{system}__invoices where status = 'paid'").fetchone()[0]
                for system in ("xero", "netsuite")}
        assert paid["xero"] == paid["netsuite"] > 0, paid


@pytest.mark.parametrize("system", ["xero", "netsuite"])
def test_dagster_has_the_dbt_models_downstream_of_the_raw_assets(monkeypatch, system):
    from orchestration.definitions import defs as load_defs

    monkeypatch.setenv("ACCOUNTING_SYSTEM", system)
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(["staging", name])).parent_keys}

    assert parents("stg_shopify__orders") == {"raw/shopify__orders"}
    assert parents("stg_shopify__refund_line_items") == {"raw/shopify__orders"}
    assert parents("stg_amazon__settlement_lines") == {"raw/amazon__settlement_lines"}
    assert parents("stg_easypost__tracking_details") == {"raw/easypost__trackers"}
    assert parents(f"stg_{system}__invoices") == {f"raw/{system}__invoices"}
    assert parents("stg_accounting__invoices") == {f"staging/stg_{system}__invoices"}
    other = "netsuite" if system == "xero" else "xero"
    assert dg.AssetKey(["staging", f"stg_{other}__invoices"]) not in keys

    staging = [k for k in keys if k.path[0] == "staging"]
    assert len(staging) > 40
    for key in staging:
        node = graph.get(key)
        assert node.group_name == "reconciliation", key
        for parent in node.parent_keys:
            # every upstream is a real asset: an ingestion asset or another dbt model, never a dangling key
            assert graph.has(parent) and graph.get(parent).is_materializable, (key, parent)
    checks = {c for c in graph.asset_check_keys if c.asset_key.path[0] == "staging"}
    assert any(c.name.startswith("unique_stg_shopify__orders") for c in checks)

    daily = {k.path[0] for k in defs.resolve_job_def("daily").asset_layer.executable_asset_keys}
    assert "staging" not in daily, "reconciliation adds itself to the daily job once its marts exist"


def test_every_staging_model_and_column_is_described(built, warehouse):
    """The yml documents exactly the columns each model has, each with a description."""
    env = {**warehouse, "ACCOUNTING_SYSTEM": "xero"}
    manifest = json.loads((Path(env["CLOSELOOP_DATA_DIR"]) / "dbt-target-xero" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "staging"]
    assert len(models) > 40
    for node in models:
        assert len(node["description"]) > 40, f"{node['name']} has no real description"
        built_columns = {name for name, _ in staging_columns(env, node["name"])}
        assert set(node["columns"]) == built_columns, (node["name"], set(node["columns"]) ^ built_columns)
        assert all(c["description"] for c in node["columns"].values()), node["name"]
