"""Reading accounts back from the store as the proxy sees them."""

from __future__ import annotations

from typing import Any

from store.accounts import AccountView, load_views
from store.db import Store


def account_view(store: Store, account_id: int) -> AccountView:
    return next(view for view in load_views(store.cipher) if view.id == account_id)


def view(
    id: int,
    provider: str = "claude",
    status: str = "active",
    primary: bool = False,
    created: float = 0.0,
    cooldown: float | None = None,
    **fields: Any,
) -> AccountView:
    """An AccountView built by hand (no store): the fields a test cares about, plain defaults for the rest."""
    values: dict[str, Any] = {
        "id": id,
        "provider": provider,
        "label": "",
        "identity": f"i{id}",
        "email": None,
        "status": status,
        "status_reason": "why",
        "cooldown_until": cooldown,
        "is_primary": primary,
        "access_token": "a",
        "refresh_token": "r",
        "expires_at": None,
        "token_version": 1,
        "metadata": {},
        "created_at": created,
        "last_refresh_at": None,
        "last_refresh_result": "",
    }
    values.update(fields)
    return AccountView(**values)
