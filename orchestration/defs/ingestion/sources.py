"""The sources closeloop ingests: which connector module, which entities, which resource."""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import cached_property

ACCOUNTING_SYSTEMS = ("xero", "netsuite")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    title: str
    accounting: bool = False

    @cached_property
    def module(self):
        return importlib.import_module(f"connectors.{self.name}")

    @property
    def entities(self) -> list[str]:
        return list(self.module.SHAPES)


SOURCES = [
    SourceSpec("shopify", "Shopify"),
    SourceSpec("amazon", "Amazon"),
    SourceSpec("shipbob", "ShipBob"),
    SourceSpec("easypost", "EasyPost"),
    SourceSpec("xero", "Xero", accounting=True),
    SourceSpec("netsuite", "NetSuite", accounting=True),
]


def accounting_system(env=os.environ) -> str:
    value = env.get("ACCOUNTING_SYSTEM", "xero").strip().lower()
    if value not in ACCOUNTING_SYSTEMS:
        raise ValueError(f"ACCOUNTING_SYSTEM must be one of {', '.join(ACCOUNTING_SYSTEMS)}, got {value!r}")
    return value


def active_sources(env=os.environ) -> list[SourceSpec]:
    """Every channel-side source, and the one accounting system the brand uses."""
    system = accounting_system(env)
    return [s for s in SOURCES if not s.accounting or s.name == system]
