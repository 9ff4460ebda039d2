"""A live Kleis with the Codex provider against the fake ChatGPT auth host and backend, and Codex CLI's request shape."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import openai

from addons.server import ProxyThread
from addons.services import Parts
from core.config import Config
from providers.base import Provider
from providers.codex import CodexProvider, login
from store import keys
from store.db import Store, counters
from store.models import OAuthState
from tests.fakes.codex import FakeCodex
from tests.fakes.codex_auth import FakeCodexAuth

ENDPOINT = "/backend-api/codex/responses"


@dataclasses.dataclass
class CodexKleis:
    """A Kleis listener with the Codex provider, an account logged in through the fake auth host, and a key."""

    proxy: ProxyThread
    key: str
    config: Config
    auth: FakeCodexAuth
    codex: FakeCodex
    store: Store

    @property
    def url(self) -> str:
        return self.proxy.url

    def wait_for_accounts(self, timeout: float = 3.0) -> None:
        """Until the proxy's follower has read the store's latest account change."""
        target = counters().get("accounts", 0)
        deadline = time.time() + timeout
        while self.proxy.services.follower._counters.get("accounts", 0) < target:
            assert time.time() < deadline, "the proxy did not pick up the account change"
            time.sleep(0.02)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=20)


def codex_config(config: Config, auth: FakeCodexAuth, codex: FakeCodex, **changes: Any) -> Config:
    return config.replace(codex_api_base=codex.base, codex_auth_base=auth.url, **changes)


def log_in(store: Store, config: Config, auth: FakeCodexAuth) -> None:
    """The whole ChatGPT login against the fake auth host; its state row is gone once it is finished."""
    start = login.start_login(store, config)
    login.complete_login(store, config, start.flow_id, {"callback_url": auth.consent(start.authorize_url)})
    assert OAuthState.select().where(OAuthState.provider == "codex").count() == 0


def start_codex(
    store: Store,
    config: Config,
    run_proxy: Callable[..., ProxyThread],
    auth: FakeCodexAuth,
    codex: FakeCodex,
    parts: Parts | None = None,
    *,
    provider_factory: Callable[[Config], Provider] = CodexProvider,
    **changes: Any,
) -> CodexKleis:
    """Kleis with the Codex provider (health on unless `parts` says otherwise), an account logged in (once per fake
    auth host) and a new key; keywords change the configuration."""
    cfg = codex_config(config, auth, codex, **changes)
    if not auth.issued_access:
        log_in(store, cfg, auth)
    _, key = keys.create_key("codex")
    proxy = run_proxy(cfg, {"codex": provider_factory(cfg)}, parts if parts is not None else Parts(health=True))
    return CodexKleis(proxy, key, cfg, auth, codex, store)


def codex_cli_headers(key: str, version: str, originator: str = "codex_exec", sends_version: bool = True) -> dict[str, str]:
    """Codex CLI's identity headers (through a custom model provider it names its version in the user-agent only)."""
    headers = {
        "authorization": f"Bearer {key}",
        "originator": originator,
        "user-agent": f"{originator}/{version} (Debian 12.0.0; x86_64) xterm ({originator}; {version})",
        "accept": "text/event-stream",
    }
    return {**headers, "version": version} if sends_version else headers
