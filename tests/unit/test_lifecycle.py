"""Token lifecycle in one process: single-flight refresh, rotation safety, re-auth, backoff, proactive refresh.
Here the parts that need no socket; through listeners: tests/e2e/test_lifecycle.py."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from engine.refresher import ProactiveRefresher


def test_proactive_refresh_is_due_one_pass_before_the_request_path_would_refresh(config) -> None:
    from types import SimpleNamespace

    from providers.copilot import CopilotProvider
    from providers.lifecycle import TokenManager
    from tests.fakes.loopback_provider import LoopbackProvider

    now = time.time()
    skew = config.refresh_skew
    providers = {"loop": LoopbackProvider(config, {}, "http://127.0.0.1:9/token"), "copilot": CopilotProvider(config)}
    manager = TokenManager(None, providers, None)

    def view(ident: int, provider: str, expires_in: float, metadata: dict | None = None):
        return SimpleNamespace(
            id=ident,
            provider=provider,
            status="active",
            refresh_token="r",
            token_version=1,
            status_changed_at=None,
            expires_at=now + expires_in,
            metadata=metadata or {},
        )

    refresher = ProactiveRefresher(
        manager,
        SimpleNamespace(
            accounts=[
                view(1, "loop", skew + 20),  # the request path refreshes in 20 s: this pass catches it
                view(2, "loop", skew + 45),  # three passes away
                view(3, "loop", 3600),
                view(4, "copilot", 1800, {"refresh_at": now + 1500}),  # just issued (refresh_in 1500)
                view(5, "copilot", 400, {"refresh_at": now + 10}),  # refresh_in nearly run out
            ]
        ),
        interval=15.0,
    )
    assert refresher.due(manager, now) == [1, 5]


def test_the_refresher_purges_expired_logins_and_pending_imports_hourly(store) -> None:
    from providers import oauth
    from store.models import OAuthState

    oauth.save_state(store, "claude", "live-login", "verifier")
    oauth.save_state(store, "claude-import", "old-import", data={"refresh_token": "x"}, ttl=60)
    refresher = ProactiveRefresher(None, SimpleNamespace(accounts=[]))
    later = time.time() + 120  # the import's 60 s have passed, the login's 10 minutes have not
    assert asyncio.run(refresher.purge_expired_logins(later)) == 1
    assert [row.state for row in OAuthState.select()] == ["live-login"]
    oauth.save_state(store, "claude-import", "another", ttl=60)
    assert asyncio.run(refresher.purge_expired_logins(later + 120)) == 0  # within the hour: no second pass
    assert asyncio.run(refresher.purge_expired_logins(later + refresher.purge_every)) == 2  # the login's time is up too
    assert OAuthState.select().count() == 0
