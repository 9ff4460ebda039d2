"""A live Kleis with the Codex provider against the fake ChatGPT auth host and backend, and Codex CLI's request shape."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import openai

from addons.server import ProxyThread
from addons.services import Parts
from core.config import Config
from providers.codex import CodexProvider, login
from store import keys
from store.db import Store
from tests.fakes.codex import FakeCodex
from tests.fakes.codex_auth import FakeCodexAuth

ENDPOINT = "/backend-api/codex/responses"


@dataclasses.dataclass
class CodexKleis:
    proxy: ProxyThread
    key: str
    config: Config
    auth: FakeCodexAuth
    codex: FakeCodex

    @property
    def url(self) -> str:
        return self.proxy.url

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=20)


def codex_config(config: Config, auth: FakeCodexAuth, codex: FakeCodex, **changes: Any) -> Config:
    return config.replace(codex_api_base=codex.base, codex_auth_base=auth.url, **changes)


def log_in(store: Store, config: Config, auth: FakeCodexAuth) -> None:
    start = login.start_login(store, config)
    login.complete_login(store, config, start.flow_id, {"callback_url": auth.consent(start.authorize_url)})


def start_codex(
    store: Store, config: Config, run_proxy: Callable[..., ProxyThread], auth: FakeCodexAuth, codex: FakeCodex, **changes: Any
) -> CodexKleis:
    """Kleis with the Codex provider, health on, an account logged in (once per store) and a new key."""
    cfg = codex_config(config, auth, codex, **changes)
    if not auth.issued_access:
        log_in(store, cfg, auth)
    _, key = keys.create_key("codex")
    proxy = run_proxy(cfg, {"codex": CodexProvider(cfg)}, Parts(health=True))
    return CodexKleis(proxy, key, cfg, auth, codex)


def codex_cli_headers(key: str, version: str, originator: str = "codex_exec", sends_version: bool = True) -> dict[str, str]:
    """Codex CLI's identity headers (through a custom model provider it names its version in the user-agent only)."""
    headers = {
        "authorization": f"Bearer {key}",
        "originator": originator,
        "user-agent": f"{originator}/{version} (Debian 12.0.0; x86_64) xterm ({originator}; {version})",
        "accept": "text/event-stream",
    }
    return {**headers, "version": version} if sends_version else headers
