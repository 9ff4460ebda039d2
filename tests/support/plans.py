"""A Claude plan and a ChatGPT/Codex plan behind one Kleis: their fake APIs and login servers started, an account on
each, and a config pointing at them (tests that move between providers, or run one client on each)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from core.config import Config
from store.accounts import TokenSet, upsert_account
from store.db import Store
from tests.fakes.claude import ACCOUNT, FakeClaudeAPI, claude_oauth
from tests.fakes.codex import FakeCodex
from tests.fakes.codex_auth import FakeCodexAuth
from tests.support.codex import log_in


@contextlib.contextmanager
def claude_and_codex(store: Store, config: Config) -> Iterator[tuple[Config, FakeClaudeAPI, FakeCodex]]:
    """(config, Claude's fake API, Codex's fake backend), each plan with one account; every fake stopped after."""
    oauth, codex_auth = claude_oauth().start(), FakeCodexAuth().start()
    claude_api, codex = FakeClaudeAPI(valid_tokens=oauth.issued_access).start(), FakeCodex(valid_tokens=codex_auth.issued_access).start()
    try:
        cfg = config.replace(
            claude_api_base=claude_api.url, claude_auth_base=oauth.url, codex_api_base=codex.base, codex_auth_base=codex_auth.url
        )
        access, refresh = oauth.seed()
        upsert_account(
            "claude", ACCOUNT["uuid"], TokenSet(access, refresh, time.time() + 3600), store.cipher, email=ACCOUNT["email_address"]
        )
        log_in(store, cfg, codex_auth)
        yield cfg, claude_api, codex
    finally:
        for fake in (claude_api, codex, oauth, codex_auth):
            fake.stop()
