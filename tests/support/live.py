"""A live Kleis listener on loopback with the loopback provider, and what it was started with."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from addons.server import ProxyThread
from addons.services import Parts
from core.config import Config
from core.protocol import Protocol
from store import keys
from store.accounts import AccountView, TokenSet, upsert_account
from store.db import Store
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.loopback_provider import LoopbackProvider
from tests.fakes.oauth import FakeOAuth
from tests.fakes.openai import FakeOpenAI


@dataclasses.dataclass
class LiveKleis:
    """A running listener and what it was started with."""

    proxy: ProxyThread
    store: Store
    config: Config
    key: str
    key_id: int
    provider: LoopbackProvider
    oauth: FakeOAuth
    anthropic: FakeAnthropic
    openai: FakeOpenAI

    @property
    def url(self) -> str:
        return self.proxy.url

    def add_account(self, identity: str = "acct-1", *, expires_in: float = 3600, primary: bool | None = None) -> AccountView:
        from store.accounts import set_primary

        access, refresh = self.oauth.seed()
        row, _ = upsert_account(
            "loop", identity, TokenSet(access, refresh, time.time() + expires_in), self.store.cipher, email=f"{identity}@example.test"
        )
        if primary:
            set_primary(row.id)
        self.wait_for_accounts()
        return next(a for a in self.proxy.services.follower.accounts if a.id == row.id)

    def wait_for_accounts(self, timeout: float = 2.0) -> None:
        """Wait until the proxy's follower has caught up with the store."""
        from store.db import counters

        target = counters().get("accounts", 0)
        deadline = time.time() + timeout
        follower = self.proxy.services.follower
        while time.time() < deadline:
            if follower._counters.get("accounts", 0) >= target:
                return
            time.sleep(0.02)
        raise AssertionError("the proxy did not pick up the account change")

    def headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}", **extra}


def start_kleis(
    store: Store,
    config: Config,
    run_proxy: Callable[..., ProxyThread],
    oauth: FakeOAuth,
    anthropic: FakeAnthropic,
    openai: FakeOpenAI,
    parts: Parts | None = None,
) -> LiveKleis:
    """Kleis with the loopback provider against the loopback fakes, and a new key (no account yet)."""
    provider = LoopbackProvider(
        config,
        bases={Protocol.MESSAGES: anthropic.url, Protocol.CHAT: openai.url, Protocol.RESPONSES: openai.url},
        token_url=f"{oauth.url}/v1/oauth/token",
    )
    row, key = keys.create_key("tests")
    proxy = run_proxy(config, {"loop": provider}, parts)
    return LiveKleis(proxy, store, config, key, row.id, provider, oauth, anthropic, openai)
