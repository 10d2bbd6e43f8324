"""The sandbox's own credentials: deterministic per seed, written to the env file by ``serve``.

They are not secrets (the sandbox serves synthetic data on 127.0.0.1), but the emulators check
them exactly as the real services check theirs, so a connector that sends the wrong header or
none gets the real kind of 401 or 403.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass


def _token(seed: int, name: str, length: int = 32) -> str:
    return hashlib.sha256(f"closeloop-sandbox:{seed}:{name}".encode()).hexdigest()[:length]


@dataclass(frozen=True)
class SandboxCredentials:
    seed: int

    @property
    def shopify_access_token(self) -> str:
        return "shpat_" + _token(self.seed, "shopify")

    @property
    def shipbob_token(self) -> str:
        return "sbpat_" + _token(self.seed, "shipbob")

    @property
    def shipbob_channel_id(self) -> int:
        return 100000 + self.seed % 1000

    @property
    def easypost_api_key(self) -> str:
        return "EZTK" + _token(self.seed, "easypost")

    @property
    def xero_client_id(self) -> str:
        return _token(self.seed, "xero-client-id").upper()

    @property
    def xero_client_secret(self) -> str:
        return _token(self.seed, "xero-client-secret", 48)

    @property
    def xero_refresh_token(self) -> str:
        return _token(self.seed, "xero-refresh", 40)

    @property
    def xero_tenant_id(self) -> str:
        return str(uuid.UUID(_token(self.seed, "xero-tenant")))

    @property
    def netsuite_account_id(self) -> str:
        return f"{1000000 + self.seed % 1000000}_SB1"

    @property
    def netsuite_client_id(self) -> str:
        return _token(self.seed, "netsuite-client-id", 64)

    @property
    def netsuite_client_secret(self) -> str:
        return _token(self.seed, "netsuite-client-secret", 64)

    @property
    def amazon_lwa_client_id(self) -> str:
        return "amzn1.application-oa2-client." + _token(self.seed, "lwa-client")

    @property
    def amazon_lwa_client_secret(self) -> str:
        return _token(self.seed, "lwa-secret", 64)

    @property
    def amazon_refresh_token(self) -> str:
        return "Atzr|" + _token(self.seed, "lwa-refresh", 64)

    @property
    def amazon_seller_id(self) -> str:
        return "A" + _token(self.seed, "seller", 13).upper()
