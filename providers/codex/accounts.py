"""Storing a Codex account from its tokens: the identity they name decides which row is added or updated."""

from __future__ import annotations

from core.exceptions import ProviderError
from providers.codex.constants import PROVIDER
from providers.codex.jwt import CodexIdentity
from providers.oauth import LoginResult, finish
from store.accounts import TokenSet
from store.db import Store


def store_account(store: Store, tokens: TokenSet, identity: CodexIdentity, *, label: str = "", how: str = "login") -> LoginResult:
    """Upsert by (ChatGPT account id, user id): the same account logged in or imported again updates its row."""
    if not identity.account_id:
        raise ProviderError("the ChatGPT tokens name no account (no chatgpt_account_id claim); log in again")
    return finish(store, PROVIDER, identity.key, tokens, email=identity.email, label=label, how=how)
