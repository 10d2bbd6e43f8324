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


class ShopifyResource(SourceResource):
    """Shopify Admin GraphQL: the shop's base URL, an Admin API access token and the API version."""

    shop_url: str
    access_token: str
    api_version: str = "2026-07"

    def build_client(self):
        from connectors.shopify import ShopifyClient, ShopifySettings

        return ShopifyClient(ShopifySettings(self.shop_url, self.access_token, self.api_version))


class ShipBobResource(SourceResource):
    """ShipBob: API root, personal access token, the channel writes are made under, API version."""

    base_url: str
    access_token: str
    channel_id: int | None = None
    api_version: str = "2026-07"

    def build_client(self):
        from connectors.shipbob import ShipBobClient, ShipBobSettings

        return ShipBobClient(ShipBobSettings(self.base_url, self.access_token, self.channel_id, self.api_version))


class EasyPostResource(SourceResource):
    """EasyPost: API base URL and API key."""

    base_url: str
    api_key: str

    def build_client(self):
        from connectors.easypost import EasyPostClient, EasyPostSettings

        return EasyPostClient(EasyPostSettings(self.base_url, self.api_key))


class NetSuiteResource(SourceResource):
    """NetSuite SuiteTalk REST and SuiteQL: OAuth 2.0 client credentials for the account."""

    base_url: str
    token_url: str
    account_id: str
    client_id: str
    client_secret: str
    refresh_token: str | None = None
    concurrency: int = 5
    timezone: str = "UTC"

    def build_client(self):
        from connectors.netsuite import NetSuiteClient, NetSuiteSettings

        return NetSuiteClient(NetSuiteSettings(self.base_url, self.token_url, self.account_id, self.client_id,
                                               self.client_secret, self.refresh_token or None, self.concurrency, self.timezone))


class AmazonResource(SourceResource):
    """Amazon Selling Partner API: the LWA app credentials and the seller's refresh token."""

    spapi_base_url: str
    lwa_token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    marketplace_id: str
    backfill_days: int = 730

    def build_client(self):
        from connectors.amazon import AmazonClient, AmazonSettings

        return AmazonClient(AmazonSettings(self.spapi_base_url, self.lwa_token_url, self.client_id, self.client_secret,
                                           self.refresh_token, self.marketplace_id, self.backfill_days))


def _optional(name: str):
    """An EnvVar when the variable is set; None (the field's default) otherwise."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def source_resources() -> dict[str, dg.ConfigurableResource]:
    """Each resource reads its settings from environment variables (never from code)."""
    return {
        "warehouse": WarehouseResource(path=os.environ.get("CLOSELOOP_WAREHOUSE", default_warehouse_path())),
        "shopify": ShopifyResource(shop_url=dg.EnvVar("SHOPIFY_SHOP_URL"), access_token=dg.EnvVar("SHOPIFY_ACCESS_TOKEN"),
                                   api_version=os.environ.get("SHOPIFY_API_VERSION") or "2026-07"),
        "shipbob": ShipBobResource(base_url=dg.EnvVar("SHIPBOB_BASE_URL"), access_token=dg.EnvVar("SHIPBOB_ACCESS_TOKEN"),
                                   channel_id=int(os.environ["SHIPBOB_CHANNEL_ID"]) if os.environ.get("SHIPBOB_CHANNEL_ID", "").isdigit() else None,
                                   api_version=os.environ.get("SHIPBOB_API_VERSION") or "2026-07"),
        "easypost": EasyPostResource(base_url=dg.EnvVar("EASYPOST_BASE_URL"), api_key=dg.EnvVar("EASYPOST_API_KEY")),
        "xero": XeroResource(base_url=dg.EnvVar("XERO_BASE_URL"), token_url=dg.EnvVar("XERO_TOKEN_URL"),
                             client_id=dg.EnvVar("XERO_CLIENT_ID"), client_secret=dg.EnvVar("XERO_CLIENT_SECRET"),
                             tenant_id=dg.EnvVar("XERO_TENANT_ID"),
                             refresh_token=_optional("XERO_REFRESH_TOKEN")),
        "netsuite": NetSuiteResource(base_url=dg.EnvVar("NETSUITE_BASE_URL"), token_url=dg.EnvVar("NETSUITE_TOKEN_URL"),
                                     account_id=dg.EnvVar("NETSUITE_ACCOUNT_ID"), client_id=dg.EnvVar("NETSUITE_CLIENT_ID"),
                                     client_secret=dg.EnvVar("NETSUITE_CLIENT_SECRET"),
                                     refresh_token=_optional("NETSUITE_REFRESH_TOKEN"),
                                     concurrency=int(os.environ.get("NETSUITE_CONCURRENCY", "5")),
                                     timezone=os.environ.get("NETSUITE_TIMEZONE", "UTC")),
        "amazon": AmazonResource(spapi_base_url=dg.EnvVar("AMAZON_SPAPI_BASE_URL"), lwa_token_url=dg.EnvVar("AMAZON_LWA_TOKEN_URL"),
                                 client_id=dg.EnvVar("AMAZON_LWA_CLIENT_ID"), client_secret=dg.EnvVar("AMAZON_LWA_CLIENT_SECRET"),
                                 refresh_token=dg.EnvVar("AMAZON_REFRESH_TOKEN"), marketplace_id=dg.EnvVar("AMAZON_MARKETPLACE_ID"),
                                 backfill_days=int(os.environ.get("AMAZON_BACKFILL_DAYS", "730"))),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=source_resources())
