"""A refresh run from the CLI or the admin ("refresh now"): one forced refresh outside any proxy, saying what it
waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from core.exceptions import KleisError
from providers.lifecycle import REFRESH_CALL_TIMEOUT, RefreshFailed, TokenManager
from store import leases
from store.accounts import AccountView
from store.db import Store


def refresh_now_blocking(store: Store, account_id: int, on_wait: Callable[[str], None] | None = None) -> AccountView:
    """For the CLI and the admin: one forced refresh, outside any proxy; `on_wait` hears what it waits for."""
    from providers.registry import provider_map

    providers = provider_map(store.config)
    row = leases.read(account_id, store.cipher)
    if row is not None and row.provider not in providers:
        raise KleisError(f"the {row.provider} provider is not available in this build of Kleis")

    async def run() -> AccountView:
        async with httpx.AsyncClient(timeout=httpx.Timeout(REFRESH_CALL_TIMEOUT, connect=10.0), trust_env=False) as http:
            manager = TokenManager(store, providers, http, on_wait=on_wait)
            return await manager.refresh(account_id, force=True)

    try:
        return asyncio.run(run())
    except RefreshFailed as exc:
        raise KleisError(str(exc)) from None
