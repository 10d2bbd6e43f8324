"""Resources: the warehouse and one per source system, configured from the environment."""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from connectors.raw_store import RawStore


def default_warehouse_path() -> str:
    return str(Path(os.environ.get("CLOSELOOP_DATA_DIR", "data")) / "warehouse.duckdb")


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse; pipeline runs are its only writer."""

    path: str

    _store: RawStore | None = PrivateAttr(default=None)

    def raw_store(self) -> RawStore:
        if self._store is None:
            self._store = RawStore(self.path)
        return self._store

    def teardown_after_execution(self, context) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class SourceResource(dg.ConfigurableResource):
    """A source's settings; ``client()`` builds its connector once per run."""

    _client: object | None = PrivateAttr(default=None)

    def build_client(self):  # pragma: no cover - each source overrides
        raise NotImplementedError

    def client(self):
        if self._client is None:
            self._client = self.build_client()
        return self._client

    def teardown_after_execution(self, context) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class XeroResource(SourceResource):
    """Xero Accounting: OAuth 2.0 app credentials and the organisation (tenant)."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    tenant_id: str
    refresh_token: str | None = None

    def build_client(self):
        from connectors.xero import XeroClient, XeroSettings

        return XeroClient(XeroSettings(self.base_url, self.token_url, self.client_id, self.client_secret,
                                       self.tenant_id, self.refresh_token or None))


def source_resources() -> dict[str, dg.ConfigurableResource]:
    """Each resource reads its settings from environment variables (never from code)."""
    return {
        "warehouse": WarehouseResource(path=os.environ.get("CLOSELOOP_WAREHOUSE", default_warehouse_path())),
        "xero": XeroResource(base_url=dg.EnvVar("XERO_BASE_URL"), token_url=dg.EnvVar("XERO_TOKEN_URL"),
                             client_id=dg.EnvVar("XERO_CLIENT_ID"), client_secret=dg.EnvVar("XERO_CLIENT_SECRET"),
                             tenant_id=dg.EnvVar("XERO_TENANT_ID"),
                             refresh_token=os.environ.get("XERO_REFRESH_TOKEN") and dg.EnvVar("XERO_REFRESH_TOKEN")),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=source_resources())
