"""The Dagster definitions load, describe themselves, and follow the configuration."""
from __future__ import annotations

import pytest

from orchestration.definitions import defs as load_defs
from orchestration.defs.ingestion.sources import SOURCES, accounting_system


def test_definitions_load_with_a_description_on_every_asset():
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert keys, "no assets"
    for key in keys:
        node = graph.get(key)
        assert node.description and len(node.description) > 40, f"{key.to_user_string()} has no real description"
    for source in SOURCES:
        for entity in source.entities:
            assert any(k.to_user_string() == f"raw/{source.name}__{entity}" for k in keys)
    assert [s.name for s in defs.schedules] == ["daily_schedule"]
    assert {"warehouse"} | {s.name for s in SOURCES} <= set(defs.resources)


def test_every_raw_asset_carries_its_checks():
    graph = load_defs().resolve_asset_graph()
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"received_what_the_source_reported", "quarantine_share"} <= check_names
    assert any("freshness" in name for name in check_names)


@pytest.mark.parametrize("system", ["xero", "netsuite"])
def test_the_daily_job_ingests_the_configured_accounting_system(monkeypatch, system):
    monkeypatch.setenv("ACCOUNTING_SYSTEM", system)
    defs = load_defs()
    job = defs.resolve_job_def("daily")
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    accounting = {s.name for s in SOURCES if s.accounting}
    for name in accounting:
        owned = any(key.startswith(f"raw/{name}__") for key in selected)
        assert owned == (name == system), (name, system)


def test_a_wrong_accounting_system_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ACCOUNTING_SYSTEM", "quickbooks")
    with pytest.raises(ValueError, match="ACCOUNTING_SYSTEM must be one of xero, netsuite, got 'quickbooks'"):
        accounting_system()
